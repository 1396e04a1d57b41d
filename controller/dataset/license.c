/*
 * The license gate over the generated SPDX License List: lookup, LicenseRef
 * syntax, the DCAT and STAC spellings of a license, and the verdict.
 */
#include "dataset/license.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cmp_id(const void *key, const void *elem)
{
    return strcmp(key, ((const dataset_spdx_license *)elem)->id);
}

const dataset_spdx_license *dataset_spdx_find(const char *id)
{
    if (!id)
        return NULL;
    return bsearch(id, dataset_spdx_licenses, dataset_spdx_count, sizeof(dataset_spdx_licenses[0]), cmp_id);
}

static const dataset_spdx_license *find_nocase(const char *id)
{
    for (size_t i = 0; i < dataset_spdx_count; i++)
        if (strcasecmp(dataset_spdx_licenses[i].id, id) == 0)
            return &dataset_spdx_licenses[i];
    return NULL;
}

bool dataset_license_ref_valid(const char *s)
{
    static const char prefix[] = "LicenseRef-";
    if (!s || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
        return false;
    s += sizeof(prefix) - 1;
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int dataset_license_check_spec(const char *license, char msg[DATASET_MSG_MAX])
{
    const dataset_spdx_license *l = NULL;

    if (!license || !*license)
        return dataset_fail(msg, MB_EINVAL, "spec.license is empty: set an SPDX license identifier such as CC-BY-4.0");
    if (strncmp(license, "LicenseRef-", 11) == 0) {
        if (dataset_license_ref_valid(license))
            return 0;
        return dataset_fail(msg, MB_EINVAL,
                            "spec.license \"%.100s\" is not a valid LicenseRef: after \"LicenseRef-\" use only "
                            "letters, digits, \"-\" and \".\"",
                            license);
    }
    if ((l = dataset_spdx_find(license))) {
        if (!l->deprecated)
            return 0;
        if (l->replacement)
            return dataset_fail(msg, MB_EINVAL,
                                "spec.license \"%s\" is deprecated on the SPDX License List %s: use \"%s\" instead",
                                l->id, dataset_spdx_version, l->replacement);
        return dataset_fail(msg, MB_EINVAL,
                            "spec.license \"%s\" is deprecated on the SPDX License List %s, which names no "
                            "identifier in its place: choose a current identifier",
                            l->id, dataset_spdx_version);
    }
    if ((l = find_nocase(license)) && !l->deprecated)
        return dataset_fail(msg, MB_EINVAL,
                            "spec.license \"%.100s\" is not on the SPDX License List %s as written: identifiers are "
                            "case-sensitive, write \"%s\"",
                            license, dataset_spdx_version, l->id);
    if (strpbrk(license, " ()"))
        return dataset_fail(msg, MB_EINVAL,
                            "spec.license \"%.100s\" is an expression: set a single SPDX license identifier or a "
                            "LicenseRef-<id>",
                            license);
    return dataset_fail(msg, MB_EINVAL,
                        "spec.license \"%.100s\" is not on the SPDX License List %s: use a listed identifier or a "
                        "custom LicenseRef-<id>",
                        license, dataset_spdx_version);
}

const char *dataset_license_from_dcat(const char *value, size_t *len)
{
    static const char *const prefixes[] = {"https://spdx.org/licenses/", "http://spdx.org/licenses/"};
    static const char *const suffixes[] = {".html", ".json"};

    if (!value)
        return NULL;
    *len = strlen(value);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t p = strlen(prefixes[i]);
        if (strncmp(value, prefixes[i], p) != 0)
            continue;
        value += p;
        *len -= p;
        for (size_t j = 0; j < sizeof(suffixes) / sizeof(suffixes[0]); j++) {
            size_t s = strlen(suffixes[j]);
            if (*len > s && strcmp(value + *len - s, suffixes[j]) == 0) {
                *len -= s;
                break;
            }
        }
        break;
    }
    return value;
}

int dataset_license_judge(const char *license, const char *const *dcat, size_t ndcat, const char *stac,
                          char msg[DATASET_MSG_MAX])
{
    int err = 0;

    if ((err = dataset_license_check_spec(license, msg)) < 0)
        return err;
    if (ndcat == 0)
        return dataset_fail(msg, MB_EINVAL,
                            "the DCAT document declares no dct:license: declare \"%s\" on the dataset or its "
                            "distributions",
                            license);
    for (size_t i = 0; i < ndcat; i++) {
        size_t len = 0;
        const char *id = dataset_license_from_dcat(dcat[i], &len);
        if (!id || len != strlen(license) || strncmp(id, license, len) != 0)
            return dataset_fail(msg, MB_EINVAL,
                                "the DCAT document's dct:license \"%.200s\" is not spec.license \"%s\": make them "
                                "the same license",
                                dcat[i] ? dcat[i] : "", license);
    }
    if (!stac)
        return dataset_fail(msg, MB_EINVAL, "the STAC document declares no license: set license to \"%s\"", license);
    if (strcmp(stac, "other") == 0 || strcmp(stac, "proprietary") == 0 || strcmp(stac, "various") == 0)
        return dataset_fail(msg, MB_EINVAL,
                            "the STAC document's license is \"%s\", which names no SPDX license: set it to \"%s\"",
                            stac, license);
    if (strcmp(stac, license) != 0)
        return dataset_fail(msg, MB_EINVAL,
                            "the STAC document's license \"%.200s\" is not spec.license \"%s\": make them the same "
                            "license",
                            stac, license);
    return 0;
}
