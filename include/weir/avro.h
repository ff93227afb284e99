/*
 * weir/avro.h - Avro values in records: decoding, field access, schema
 * resolution, the Confluent wire format and object container files.
 *
 * Built on Avro-C. Three handles:
 *
 *   weir_avro_format_t  what the bytes look like: a reader schema (a .avsc
 *                       file or JSON text), optionally the Confluent wire
 *                       format (magic byte 0, a 4-byte big-endian schema
 *                       id, then the binary datum) with a local schema
 *                       directory holding <id>.avsc, and the paths of the
 *                       key and time fields. Immutable once handed to a
 *                       pipeline; shared by every subtask.
 *   weir_avro_codec_t   the per-thread worker made from a format: decodes
 *                       one value at a time (resolving the writer's schema
 *                       to the reader's), answers field queries, encodes
 *                       JSON into Avro. Not thread-safe: one per thread.
 *   operators           weir_stream_avro_extract() (decode, set ts, add the
 *                       key header; undecodable input goes to the
 *                       WEIR_TAG_ERRORS output with the reason), and object
 *                       container files as a source and an exactly-once
 *                       sink.
 *
 * Field paths are dot-separated record field names ("order.customer.id").
 * A union on the way is entered through its current branch; a null branch
 * means the field is absent (WEIR_ENOENT).
 *
 * Schema resolution follows the Avro specification: fields are matched by
 * name (and reader aliases), reader fields missing from the writer take
 * their default, writer fields unknown to the reader are skipped, int ->
 * long -> float -> double and string <-> bytes are promoted, enums are
 * matched by symbol, unions by the first matching branch. (Avro-C's own
 * resolver cannot fill reader defaults; this one does.)
 *
 * Time fields: int/long are milliseconds since the epoch unless the
 * schema says "logicalType": "timestamp-micros" (or "-nanos"), which is
 * scaled to milliseconds; a string is read as RFC 3339
 * ("2024-05-01T12:00:00.250Z", offsets allowed); a double is
 * milliseconds (fraction truncated).
 */
#ifndef WEIR_AVRO_H
#define WEIR_AVRO_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Header holding the extracted key bytes (key fields joined by 0x1f). */
#define WEIR_AVRO_HDR_KEY "weir.key"

/** Byte separating the values of several key fields in the key. */
#define WEIR_AVRO_KEY_SEP '\x1f'

typedef struct weir_avro_format_s weir_avro_format_t;
typedef struct weir_avro_codec_s weir_avro_codec_t;

/* ------------------------------------------------------------------ *
 * ## Formats
 * ------------------------------------------------------------------ */

/**
 * @brief A format from a reader schema file and/or a schema directory.
 * @param schema_path the reader schema (.avsc); NULL is allowed only with
 * schema_dir, and then each value is read with its writer's schema.
 * @param schema_dir NULL for plain binary datums written with the reader
 * schema; otherwise values use the Confluent wire format and the writer
 * schema of id N is read from "<schema_dir>/<N>.avsc" on first use.
 * @returns NULL on failure (unreadable or invalid schema, no schema at
 * all), with the reason in errstr.
 * @remark Ownership: paths are copied. The caller owns the format and
 * frees it with weir_avro_format_destroy() after every codec and pipeline
 * using it is gone.
 * @remark Thread-safety: configure from one thread; once configured, any
 * number of threads may make codecs from it at once.
 */
WEIR_EXTERN weir_avro_format_t *weir_avro_format_new(const char *schema_path,
                                                     const char *schema_dir,
                                                     char *errstr,
                                                     size_t errstr_size);

/**
 * @brief Like weir_avro_format_new() with the reader schema given as JSON
 * text (copied) instead of a file. schema_json may be NULL only with
 * schema_dir.
 */
WEIR_EXTERN weir_avro_format_t *
weir_avro_format_new_json(const char *schema_json, const char *schema_dir,
                          char *errstr, size_t errstr_size);

/**
 * @brief Sets the key fields: comma-separated paths ("user.id,session").
 * NULL or "" means no key (no key header is added).
 * @returns WEIR_OK; WEIR_EINVAL for a path not in the reader schema (the
 * check needs a reader schema; without one paths are checked per value).
 */
WEIR_EXTERN int weir_avro_format_set_key(weir_avro_format_t *fmt,
                                         const char *paths);

/**
 * @brief Sets the path of the event-time field. NULL keeps the record's
 * timestamp as it is.
 * @returns WEIR_OK or WEIR_EINVAL (as for weir_avro_format_set_key()).
 */
WEIR_EXTERN int weir_avro_format_set_time(weir_avro_format_t *fmt,
                                          const char *path);

/**
 * @brief The schema id written in front of encoded values
 * (weir_avro_encode_json()) in the Confluent wire format; -1 (the
 * default) writes plain binary datums.
 */
WEIR_EXTERN int weir_avro_format_set_schema_id(weir_avro_format_t *fmt,
                                               int32_t id);

/**
 * @brief The reader schema as JSON text, or NULL when the format has
 * none. @remark Ownership: borrowed for the life of fmt.
 */
WEIR_EXTERN const char *weir_avro_format_schema(const weir_avro_format_t *fmt);

/** @brief Frees a format. NULL is a no-op. */
WEIR_EXTERN void weir_avro_format_destroy(weir_avro_format_t *fmt);

/* ------------------------------------------------------------------ *
 * ## Codecs
 * ------------------------------------------------------------------ */

/**
 * @brief A codec for fmt.
 * @returns NULL when out of memory or the schema cannot be loaded, with
 * the reason in errstr.
 * @remark Ownership: fmt is borrowed and must outlive the codec.
 * @remark Thread-safety: a codec is used by one thread at a time.
 */
WEIR_EXTERN weir_avro_codec_t *
weir_avro_codec_new(const weir_avro_format_t *fmt, char *errstr,
                    size_t errstr_size);

/**
 * @brief A codec for plain binary datums written with writer_schema_json
 * (for example an object container file's schema), resolved to fmt's
 * reader schema when fmt has one. fmt's schema directory is not used.
 */
WEIR_EXTERN weir_avro_codec_t *
weir_avro_codec_new_writer(const weir_avro_format_t *fmt,
                           const char *writer_schema_json, char *errstr,
                           size_t errstr_size);

/** @brief Frees a codec. NULL is a no-op. */
WEIR_EXTERN void weir_avro_codec_destroy(weir_avro_codec_t *c);

/**
 * @brief Decodes one value (framed or not, per the format) and resolves
 * it to the reader schema. Later queries refer to this value.
 * @returns WEIR_OK; WEIR_ECODEC for bytes that are not a valid value
 * (truncated, trailing bytes, bad framing, unknown schema id, resolution
 * failure), with the reason in weir_avro_codec_errstr().
 * @remark Ownership: value is read during the call only.
 */
WEIR_EXTERN int weir_avro_decode(weir_avro_codec_t *c, weir_buf_t value);

/**
 * @brief Why the last call failed ("" when it did not).
 * @remark Ownership: borrowed until the next call on c.
 */
WEIR_EXTERN const char *weir_avro_codec_errstr(const weir_avro_codec_t *c);

/** @brief The schema id of the last decoded value (-1 when not framed). */
WEIR_EXTERN int32_t weir_avro_codec_schema_id(const weir_avro_codec_t *c);

/**
 * @brief The bytes of a field of the decoded value: string, bytes and
 * fixed as they are, an enum as its symbol, numbers and booleans as
 * decimal text ("42", "true").
 * @returns WEIR_OK; WEIR_ENOENT when the path does not exist or is null;
 * WEIR_ENOTSUP for records, arrays and maps; WEIR_EINVAL.
 * @remark Ownership: *out is borrowed until the next call on c.
 */
WEIR_EXTERN int weir_avro_field(weir_avro_codec_t *c, const char *path,
                                weir_buf_t *out);

/**
 * @brief A numeric field as int64 (int, long; float/double truncated;
 * boolean as 0/1). @returns WEIR_OK, WEIR_ENOENT, WEIR_ERANGE (not a
 * number), WEIR_EINVAL.
 */
WEIR_EXTERN int weir_avro_field_i64(weir_avro_codec_t *c, const char *path,
                                    int64_t *out);

/**
 * @brief The key of the decoded value: the format's key fields joined by
 * WEIR_AVRO_KEY_SEP. @returns WEIR_OK, WEIR_ENOENT (no key fields set, or
 * one is missing/null; reason in errstr), WEIR_ENOTSUP.
 * @remark Ownership: *key borrowed until the next call on c.
 */
WEIR_EXTERN int weir_avro_key(weir_avro_codec_t *c, weir_buf_t *key);

/**
 * @brief The event time of the decoded value from the format's time
 * field, in ms. @returns WEIR_OK, WEIR_ENOENT (no time field set, or it
 * is missing/null), WEIR_ERANGE (not a timestamp).
 */
WEIR_EXTERN int weir_avro_time(weir_avro_codec_t *c, weir_ts_t *ts);

/**
 * @brief The decoded value as one line of JSON (Avro's JSON encoding).
 * @returns WEIR_OK, WEIR_ENOMEM, WEIR_EINVAL (nothing decoded).
 * @remark Ownership: *json borrowed until the next call on c.
 */
WEIR_EXTERN int weir_avro_to_json(weir_avro_codec_t *c, weir_buf_t *json);

/**
 * @brief Encodes a JSON document as a binary datum of the reader schema,
 * framed when the format has a schema id. Unions accept a plain value
 * (the first branch that fits) or Avro's {"branch": value} form; bytes
 * and fixed take strings of code points 0-255; missing record fields take
 * their schema default.
 * @returns WEIR_OK; WEIR_ECODEC when the JSON does not fit the schema
 * (reason in weir_avro_codec_errstr()); WEIR_EINVAL without a reader
 * schema.
 * @remark Ownership: *out borrowed until the next call on c.
 */
WEIR_EXTERN int weir_avro_encode_json(weir_avro_codec_t *c, weir_buf_t json,
                                      weir_buf_t *out);

/**
 * @brief Re-encodes the decoded value as a plain binary datum of the
 * reader schema (the writer's when the format has no reader schema):
 * what a container file of that schema holds.
 * @remark Ownership: *out borrowed until the next call on c.
 */
WEIR_EXTERN int weir_avro_encode_decoded(weir_avro_codec_t *c, weir_buf_t *out);

/**
 * @brief Decodes rec's value and, per the format, sets rec's timestamp
 * from the time field and adds the WEIR_AVRO_HDR_KEY header.
 * @returns WEIR_OK, or a negative code with the reason in errstr (the
 * record is then left unchanged, ready for the errors output).
 * @remark Ownership: rec is a record the caller owns (not yet emitted).
 */
WEIR_EXTERN int weir_avro_extract(weir_avro_codec_t *c, weir_record_t *rec,
                                  char *errstr, size_t errstr_size);

/**
 * @brief Like weir_avro_extract() for the value decoded last by c (rec's
 * value is not looked at): sets the timestamp and adds the key header.
 * For callers that decode once and build the record afterwards.
 * @returns WEIR_OK, or a negative code with the reason in errstr.
 */
WEIR_EXTERN int weir_avro_apply(weir_avro_codec_t *c, weir_record_t *rec,
                                char *errstr, size_t errstr_size);

/**
 * @brief A weir_key_fn for weir_stream_keyby(): the WEIR_AVRO_HDR_KEY
 * header (WEIR_ENOENT when the record has none); for a changelog entry
 * being replayed (weir_record_is_replay), the record key. opaque unused.
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN int weir_avro_key_fn(const weir_record_t *rec, weir_buf_t *key,
                                 void *opaque);

/* ------------------------------------------------------------------ *
 * ## Operators
 * ------------------------------------------------------------------ */

/**
 * @brief Decodes every record's value per fmt: sets the timestamp from
 * the time field, adds the WEIR_AVRO_HDR_KEY header and forwards the
 * record (value unchanged). Records that cannot be decoded, or lack the
 * key or time field, go to the WEIR_TAG_ERRORS side output with a
 * WEIR_HDR_ERROR reason.
 * @remark Ownership: fmt borrowed; it must outlive the pipeline.
 */
WEIR_EXTERN weir_stream_t *
weir_stream_avro_extract(weir_stream_t *s, const weir_avro_format_t *fmt);

/**
 * @brief A source reading an Avro object container file: one record per
 * datum, value = the datum as a plain binary datum of fmt's reader schema
 * (of the file's schema when fmt has none, or when fmt is NULL), offset =
 * datum index, timestamp and key header per fmt. A datum that cannot be
 * resolved goes to WEIR_TAG_ERRORS. Its position is part of every
 * checkpoint. Parallelism 1.
 * @remark Ownership: path copied; fmt borrowed, must outlive p.
 */
WEIR_EXTERN weir_stream_t *weir_avro_source_file(weir_pipeline_t *p,
                                                 const char *path,
                                                 const weir_avro_format_t *fmt);

/**
 * @brief A sink writing records into an Avro object container file of
 * fmt's reader schema. Values are read per fmt (plain datums, or the
 * Confluent format resolved to the reader schema). With checkpointing it
 * is exactly once: the records of checkpoint n are kept in its snapshot
 * and appended when n completes; recovery truncates the file to the
 * length of the restored checkpoint and appends again. A value that does
 * not decode is skipped and counted (see docs/api/avro.md).
 * Parallelism 1.
 * @returns WEIR_OK or the sticky builder error (WEIR_EINVAL when fmt has
 * no reader schema).
 * @remark Ownership: path copied; fmt borrowed, must outlive the pipeline.
 */
WEIR_EXTERN int weir_avro_sink_file(weir_stream_t *s, const char *path,
                                    const weir_avro_format_t *fmt);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_AVRO_H */
