/*
 * weir/json.h - JSON lines: parsing line records into keyed, timestamped
 * records, and the operators behind the line-file connectors.
 *
 * The JSON-lines parse operator reads records whose value is one line of
 * text (weir_source_file_lines() makes them) and emits, for each line that
 * holds a JSON object with the configured fields:
 *
 *   value  the SAME bytes as the input line (never re-encoded);
 *   key    the canonical JSON array of the key field values, in the order
 *          the fields were given ("[\"u1\",42]"), or, in content-hash mode,
 *          the 16-byte XXH3-128 digest (canonical, big-endian) of the
 *          whole object's canonical JSON;
 *   ts     the time field, an integer count of milliseconds since the
 *          epoch (negative allowed);
 *   header optionally one integer field as decimal text, for the sum, min
 *          and max aggregates.
 *
 * Canonical JSON is compact (no spaces), object members are sorted by name,
 * strings are re-encoded by jansson (so "\u0041" and "A" are equal), and
 * numbers are compared by value: an integral value is written as an
 * integer (1.0, 1e2 and -0.0 become 1, 100 and 0; 1e19 becomes
 * 10000000000000000000), exactly also beyond 64 bits and beyond the
 * double range (up to 1024 digits; larger values and non-integral values
 * beyond the double range as "d.ddde<exp>"). Other reals are compared as
 * doubles (17 significant digits). So keys compare by JSON value: {"a":1}
 * and {"a":1.0} have the same key, {"a":"1"} another one.
 *
 * Blank lines (empty, or only JSON whitespace: space, tab, CR) are
 * dropped. A line that is not valid JSON (invalid UTF-8 and NUL bytes
 * included), is valid JSON but not an object, lacks a key field, or whose
 * time field (or header field) is missing or not an integer is forwarded
 * byte for byte to the WEIR_TAG_ERRORS side output with a one-sentence
 * reason in the WEIR_HDR_ERROR header. A record is never dropped
 * silently and a bad line never fails the task.
 *
 * Numbers beyond int64 or the double range are valid JSON and do not make
 * a line invalid: anywhere, keys included, they keep their exact value.
 * Only the time field and the header field must fit int64. (A number
 * whose exponent is beyond 10^15 is rejected.)
 */
#ifndef WEIR_JSON_H
#define WEIR_JSON_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Options of the JSON-lines parse operator (opaque). */
typedef struct weir_json_opts_s weir_json_opts_t;

/** Default time field. */
#define WEIR_JSON_TIME_FIELD "ts"

/**
 * @brief New options: no key fields, time field "ts", no content hash, no
 * header field.
 * @returns NULL when out of memory.
 * @remark Ownership: the caller owns the options until
 * weir_stream_json_parse() consumes them or weir_json_opts_destroy().
 * @remark Thread-safety: build options from one thread; once given to an
 * operator they are only read, from any number of subtasks.
 */
WEIR_EXTERN weir_json_opts_t *weir_json_opts_new(void);

/** @brief Frees options. NULL is a no-op. */
WEIR_EXTERN void weir_json_opts_destroy(weir_json_opts_t *opts);

/**
 * @brief Appends a key field (a top-level member name). The key holds the
 * fields' values in the order they were added.
 * @returns WEIR_OK, WEIR_EINVAL (NULL or empty name), WEIR_ENOMEM.
 * @remark Ownership: field is copied.
 */
WEIR_EXTERN int weir_json_opts_add_key(weir_json_opts_t *opts,
                                       const char *field);

/**
 * @brief Appends key fields given as a comma-separated list ("user,page").
 * @returns WEIR_OK; WEIR_EINVAL for NULL, an empty list or an empty name
 * ("a,,b", "a,"); WEIR_ENOMEM. On error no field is added.
 * @remark Ownership: fields is copied.
 */
WEIR_EXTERN int weir_json_opts_add_keys(weir_json_opts_t *opts,
                                        const char *fields);

/**
 * @brief Sets the time field (default "ts"): a top-level member holding
 * an integer number of milliseconds since the epoch. The two values
 * INT64_MIN and INT64_MAX are reserved (WEIR_TS_MIN / WEIR_TS_MAX) and
 * make the line an error.
 * @returns WEIR_OK, WEIR_EINVAL (NULL or empty), WEIR_ENOMEM.
 * @remark Ownership: field is copied.
 */
WEIR_EXTERN int weir_json_opts_set_time_field(weir_json_opts_t *opts,
                                              const char *field);

/**
 * @brief Content-hash mode (on = 1): the key is the XXH3-128 digest of the
 * whole object's canonical JSON, so two lines are the same event when
 * they hold the same JSON value, whatever the member order or spacing.
 * Exclusive with key fields.
 * @returns WEIR_OK or WEIR_EINVAL.
 */
WEIR_EXTERN int weir_json_opts_set_content_hash(weir_json_opts_t *opts, int on);

/**
 * @brief Copies the integer member `field` into a header named `header`
 * (decimal text), for weir_agg_sum / weir_agg_min / weir_agg_max with
 * agg_opaque = header. A line where the member is missing or not an
 * integer becomes an error. NULL field turns the option off.
 * @param header header name; NULL uses the field name.
 * @returns WEIR_OK, WEIR_EINVAL (empty names), WEIR_ENOMEM.
 * @remark Ownership: both strings are copied.
 */
WEIR_EXTERN int weir_json_opts_set_header_field(weir_json_opts_t *opts,
                                                const char *field,
                                                const char *header);

/**
 * @brief Checks that the options can build an operator: at least one key
 * field or content-hash mode, not both.
 * @returns WEIR_OK or WEIR_EINVAL with the reason in errstr.
 */
WEIR_EXTERN int weir_json_opts_check(const weir_json_opts_t *opts, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Applies the JSON-lines parse operator to s (one instance per
 * subtask of s's parallelism; it is stateless). Main output: parsed
 * records; side output WEIR_TAG_ERRORS: rejected lines with their reason.
 * @param opts consumed (on success and on failure); its lifetime is tied
 * to the pipeline. Invalid options poison the stream (sticky error).
 */
WEIR_EXTERN weir_stream_t *weir_stream_json_parse(weir_stream_t *s,
                                                  weir_json_opts_t *opts);

/**
 * @brief Reads the integer member `field` of the JSON object held in
 * data[0..len) (one message or line, e.g. for a Kafka extractor that
 * needs the event time before the parse operator runs). Plain objects
 * take a single validating pass without building a document; anything
 * else is decided by jansson, so the answer is always jansson's.
 * @returns WEIR_OK with *out; WEIR_ENOENT when the object has no such
 * member; WEIR_EPARSE when data is not a JSON object or the member is not
 * an integer within int64 (a one-sentence reason in errstr, may be NULL);
 * WEIR_EINVAL for bad arguments; WEIR_ENOMEM.
 * @remark Thread-safe: no shared state. data and field are borrowed.
 */
WEIR_EXTERN int weir_json_get_int(const void *data, size_t len,
                                  const char *field, int64_t *out, char *errstr,
                                  size_t errstr_size);

/** @brief The parse operator's work on one record at a time (opaque). */
typedef struct weir_json_parser_s weir_json_parser_t;

/**
 * @brief A parser for weir_json_parser_apply() with these options.
 * @returns NULL with a reason in errstr for NULL or invalid options, or
 * when out of memory.
 * @remark Ownership: opts is borrowed and must outlive the parser (it is
 * not consumed); free the parser with weir_json_parser_destroy().
 * @remark Thread-safety: one thread at a time per parser.
 */
WEIR_EXTERN weir_json_parser_t *
weir_json_parser_new(const weir_json_opts_t *opts, char *errstr,
                     size_t errstr_size);

/**
 * @brief Parses rec's value exactly as weir_stream_json_parse() does and
 * sets rec's key (the canonical key or content hash), event time and, when
 * configured, the header field. The value is not changed.
 * @returns WEIR_OK; WEIR_ENOENT for a blank line (the operator drops
 * those); WEIR_EPARSE with the reason the operator's errors output would
 * carry in errstr (rec unchanged); WEIR_ENOMEM; WEIR_EINVAL for NULL
 * arguments. For Kafka extractors: parse where the record is read, so no
 * later operator reads the line again.
 * @remark Ownership: rec stays the caller's.
 */
WEIR_EXTERN int weir_json_parser_apply(weir_json_parser_t *jp,
                                       weir_record_t *rec, char *errstr,
                                       size_t errstr_size);

/** @brief Frees a parser. NULL is a no-op. */
WEIR_EXTERN void weir_json_parser_destroy(weir_json_parser_t *jp);

/**
 * The parse operator, for weir_stream_apply() and the test harness.
 * opaque = a weir_json_opts_t (borrowed; it must outlive the pipeline or
 * harness and must not change while in use). open() fails with
 * WEIR_EINVAL when weir_json_opts_check() does.
 */
WEIR_EXTERN extern const weir_operator_def_t weir_op_json_parse;

/* ------------------------------------------------------------------ *
 * ## Line files. The operators behind weir_source_file_lines() and
 * weir_sink_file_lines(), for weir_stream_source() / weir_stream_sink()
 * and the test harness. opaque = the path (`const char *`, borrowed; it
 * must outlive the pipeline or harness).
 * ------------------------------------------------------------------ */

/**
 * Source: one record per line, value = the line without its "\n" (a "\r"
 * before it is kept, as is every other byte), no key, ts WEIR_TS_MIN,
 * partition -1, offset = byte offset of the line. A last line without a
 * newline is a line. Polls emit at most 1024 lines (or about 4 MiB) and
 * return WEIR_DONE at the end of the file. Snapshot: the byte offset of
 * the next line and the line count; restore seeks there.
 */
WEIR_EXTERN extern const weir_operator_def_t weir_op_file_lines_source;

/**
 * Sink (WEIR_OP_F_SINGLE): writes value + "\n" per record. Without a
 * checkpoint directory it writes to the file directly (buffered, flushed
 * at on_end and close). With one it is exactly once: see
 * docs/api/json.md ("Line files") for the pending-part protocol.
 */
WEIR_EXTERN extern const weir_operator_def_t weir_op_file_lines_sink;

#ifdef __cplusplus
}
#endif
#endif /* WEIR_JSON_H */
