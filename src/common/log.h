/*
 * log.h - logging, separate from errors: levels, key=value fields, one sink
 * (stderr). The level comes from COD_LOG_LEVEL or Logging.Level.
 */
#ifndef COD_LOG_H
#define COD_LOG_H

enum cod_log_level { COD_LOG_DEBUG, COD_LOG_INFO, COD_LOG_WARN, COD_LOG_ERROR, COD_LOG_OFF };

void cod_log_set_level(enum cod_log_level level);
/* Parse "debug|info|warn|error|off"; -1 if unknown. */
int cod_log_parse_level(const char *s);
enum cod_log_level cod_log_get_level(void);
void cod_log(enum cod_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define cod_debug(comp, ...) cod_log(COD_LOG_DEBUG, comp, __VA_ARGS__)
#define cod_info(comp, ...) cod_log(COD_LOG_INFO, comp, __VA_ARGS__)
#define cod_warn(comp, ...) cod_log(COD_LOG_WARN, comp, __VA_ARGS__)
#define cod_err(comp, ...) cod_log(COD_LOG_ERROR, comp, __VA_ARGS__)

#endif
