/*
 * The object a verification runs for, as verify/ needs it: the
 * GovernedAPIRelease's identity (its probe pods are labelled with its uid,
 * and owned by it in its namespace). The release controller fills it from
 * the release; verify/ never reads the release itself.
 */
#ifndef VERIFY_OWNER_H
#define VERIFY_OWNER_H

typedef struct {
    const char *namespace;   /* metadata.namespace */
    const char *name;        /* metadata.name */
    const char *uid;         /* metadata.uid */
    const char *api_version; /* apiVersion */
} verify_owner;

#endif
