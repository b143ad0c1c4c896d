/*
 * banned.h - functions that invite overflows or hidden global state.
 *
 * Included last by every project source file (through cod.h); a use of any
 * of these becomes a compile error that names the safer replacement.
 */
#ifndef COD_BANNED_H
#define COD_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy_use_cod_buf_or_snprintf)
#undef strcat
#define strcat(x, y) BANNED(strcat_use_cod_buf)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy_use_snprintf)
#undef strncat
#define strncat(x, y, n) BANNED(strncat_use_cod_buf)
#undef sprintf
#define sprintf(...) BANNED(sprintf_use_snprintf_or_xasprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf_use_vsnprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok_use_strtok_r)
#undef gets
#define gets(x) BANNED(gets_use_fgets)
#undef asctime
#define asctime(x) BANNED(asctime_use_strftime)
#undef ctime
#define ctime(x) BANNED(ctime_use_strftime)

#endif
