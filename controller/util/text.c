/*
 * The text tests of text.h: what a string holds, byte by byte, without
 * allocating.
 */
#include "util/text.h"

bool mb_has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}
