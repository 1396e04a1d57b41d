/*
 * The resources the controllers watch, each registered once with the shared
 * informer factory together with its trim transform: the one list of what the
 * process caches of every kind. A controller takes its informers from here, so
 * that two controllers watching one kind share one cache and one trim.
 */
#ifndef MB_API_INFORMERS_H
#define MB_API_INFORMERS_H

#include "runtime/factory.h"

/*
 * The factory's informer of resource, registered on first use with the
 * transform this file gives it. Borrowed (the factory owns it). MB_EINVAL for
 * a resource without an entry here: add one, saying what its trim keeps.
 */
int api_informer(informer **out, informer_factory *f, const kube_resource *resource);

/* The trim transform registered for resource (NULL: none, or not registered); for tests. */
void (*api_trim(const kube_resource *resource))(cJSON *obj);

#endif
