/*
 * dataset/license: the SPDX License List pinned in the project (generated at
 * build time), spec.license checked against it (deprecated identifiers with
 * their replacement, case, LicenseRef syntax), and the license gate against
 * the DCAT and STAC spellings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/license.h"
#include "util/error.h"

#include <string.h>

static char msg[DATASET_MSG_MAX];

static void assert_refused(int rc, const char *needle)
{
    assert_int_equal(rc, MB_EINVAL);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
    assert_string_equal(mb_error_last(), msg);
}

static void test_list(void **state)
{
    (void)state;
    assert_string_equal(dataset_spdx_version, "3.29");
    assert_true(dataset_spdx_count > 700);
    for (size_t i = 1; i < dataset_spdx_count; i++)
        assert_true(strcmp(dataset_spdx_licenses[i - 1].id, dataset_spdx_licenses[i].id) < 0);
    assert_non_null(dataset_spdx_find("MIT"));
    assert_non_null(dataset_spdx_find("0BSD"));
    assert_non_null(dataset_spdx_find("zlib-acknowledgement"));
    assert_null(dataset_spdx_find("mit"));
    assert_null(dataset_spdx_find(NULL));
    assert_true(dataset_spdx_find("GPL-2.0")->deprecated);
    assert_false(dataset_spdx_find("GPL-2.0-only")->deprecated);
}

static void test_spec_license(void **state)
{
    (void)state;
    assert_int_equal(dataset_license_check_spec("CC-BY-4.0", msg), 0);
    assert_int_equal(dataset_license_check_spec("MIT", msg), 0);
    assert_int_equal(dataset_license_check_spec("Apache-2.0", msg), 0);
    assert_int_equal(dataset_license_check_spec("GPL-3.0-or-later", msg), 0);
    assert_int_equal(dataset_license_check_spec("LicenseRef-kfm.internal-1", msg), 0);

    assert_refused(dataset_license_check_spec("GPL-2.0", msg),
                   "deprecated on the SPDX License List 3.29: use \"GPL-2.0-only\"");
    assert_refused(dataset_license_check_spec("GPL-2.0+", msg), "use \"GPL-2.0-or-later\"");
    assert_refused(dataset_license_check_spec("LGPL-2.1", msg), "use \"LGPL-2.1-only\"");
    assert_refused(dataset_license_check_spec("AGPL-3.0", msg), "use \"AGPL-3.0-only\"");
    assert_refused(dataset_license_check_spec("GPL-2.0-with-classpath-exception", msg),
                   "use \"GPL-2.0-only WITH Classpath-exception-2.0\"");
    assert_refused(dataset_license_check_spec("GPL-3.0-with-GCC-exception", msg),
                   "use \"GPL-3.0-only WITH GCC-exception-3.1\"");
    assert_refused(dataset_license_check_spec("Nunit", msg), "names no identifier in its place");
    assert_refused(dataset_license_check_spec("mit", msg), "case-sensitive, write \"MIT\"");
    assert_refused(dataset_license_check_spec("cc-by-4.0", msg), "write \"CC-BY-4.0\"");
    assert_refused(dataset_license_check_spec("Kansas-Open-1.0", msg),
                   "\"Kansas-Open-1.0\" is not on the SPDX License List 3.29");
    assert_refused(dataset_license_check_spec("MIT OR Apache-2.0", msg), "is an expression");
    assert_refused(dataset_license_check_spec("", msg), "spec.license is empty");
    assert_refused(dataset_license_check_spec(NULL, msg), "spec.license is empty");
    assert_refused(dataset_license_check_spec("LicenseRef-", msg), "not a valid LicenseRef");
    assert_refused(dataset_license_check_spec("LicenseRef-a_b", msg), "not a valid LicenseRef");
    assert_refused(dataset_license_check_spec("LicenseRef-a b", msg), "not a valid LicenseRef");
}

static void test_license_ref(void **state)
{
    (void)state;
    assert_true(dataset_license_ref_valid("LicenseRef-1"));
    assert_true(dataset_license_ref_valid("LicenseRef-Kfm.Data-2.0"));
    assert_false(dataset_license_ref_valid("LicenseRef-"));
    assert_false(dataset_license_ref_valid("licenseref-x"));
    assert_false(dataset_license_ref_valid("LicenseRef-x+"));
    assert_false(dataset_license_ref_valid("DocumentRef-a:LicenseRef-x"));
    assert_false(dataset_license_ref_valid(NULL));
}

static void dcat_is(const char *value, const char *id)
{
    size_t len = 0;
    const char *got = dataset_license_from_dcat(value, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(id));
    assert_memory_equal(got, id, len);
}

static void test_dcat_spellings(void **state)
{
    (void)state;
    dcat_is("CC-BY-4.0", "CC-BY-4.0");
    dcat_is("https://spdx.org/licenses/CC-BY-4.0", "CC-BY-4.0");
    dcat_is("https://spdx.org/licenses/CC-BY-4.0.html", "CC-BY-4.0");
    dcat_is("https://spdx.org/licenses/CC-BY-4.0.json", "CC-BY-4.0");
    dcat_is("http://spdx.org/licenses/MIT.html", "MIT");
    dcat_is("https://example.org/licenses/MIT", "https://example.org/licenses/MIT");
    assert_null(dataset_license_from_dcat(NULL, NULL));
}

static void test_judge(void **state)
{
    (void)state;
    const char *forms[] = {"CC-BY-4.0", "https://spdx.org/licenses/CC-BY-4.0",
                           "http://spdx.org/licenses/CC-BY-4.0.html", "https://spdx.org/licenses/CC-BY-4.0.json"};
    const char *other[] = {"https://spdx.org/licenses/CC-BY-4.0", "https://spdx.org/licenses/CC-BY-SA-4.0"};
    const char *ref[] = {"LicenseRef-kfm-open"};
    const char *cased[] = {"https://spdx.org/licenses/cc-by-4.0"};

    assert_int_equal(dataset_license_judge("CC-BY-4.0", forms, 4, "CC-BY-4.0", msg), 0);
    assert_int_equal(dataset_license_judge("LicenseRef-kfm-open", ref, 1, "LicenseRef-kfm-open", msg), 0);

    assert_refused(dataset_license_judge("GPL-2.0", forms, 4, "CC-BY-4.0", msg), "use \"GPL-2.0-only\"");
    assert_refused(dataset_license_judge("CC-BY-4.0", other, 2, "CC-BY-4.0", msg),
                   "dct:license \"https://spdx.org/licenses/CC-BY-SA-4.0\" is not spec.license \"CC-BY-4.0\"");
    assert_refused(dataset_license_judge("CC-BY-4.0", cased, 1, "CC-BY-4.0", msg), "is not spec.license");
    assert_refused(dataset_license_judge("CC-BY-4.0", NULL, 0, "CC-BY-4.0", msg), "declares no dct:license");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, NULL, msg), "STAC document declares no license");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, "other", msg),
                   "\"other\", which names no SPDX license");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, "proprietary", msg), "\"proprietary\"");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, "various", msg), "\"various\"");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, "CC-BY-SA-4.0", msg),
                   "STAC document's license \"CC-BY-SA-4.0\" is not spec.license \"CC-BY-4.0\"");
    assert_refused(dataset_license_judge("CC-BY-4.0", forms, 4, "cc-by-4.0", msg), "is not spec.license");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),           cmocka_unit_test(test_spec_license), cmocka_unit_test(test_license_ref),
        cmocka_unit_test(test_dcat_spellings), cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
