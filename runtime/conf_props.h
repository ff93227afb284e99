/*
 * runtime/conf_props.h - the configuration property table.
 *
 * XX(name, default, kind, description). kind: 'i' integer >= 0,
 * 'p' integer >= 1, 's' string, 'b' boolean (true/false). docs/CONFIGURATION.md is generated
 * from this table (weir_conf_dump_markdown).
 */
#define WEIR_CONF_PROPS(XX)                                                    \
    XX("pipeline.parallelism", "1", 'p',                                       \
       "Default parallelism of keyed operators that do not set their own; "    \
       "non-keyed operators follow their input, sources and sinks are 1.")     \
    XX("pipeline.max.keygroups", "128", 'p',                                   \
       "Number of key groups keys are hashed into; the unit of state "         \
       "redistribution. Upper bound for keyed parallelism.")                   \
    XX("batch.size", "512", 'p', "Records per batch sent between tasks.")      \
    XX("channel.capacity", "16", 'p',                                          \
       "Batches or control elements a channel holds before its producer "      \
       "blocks (backpressure).")                                               \
    XX("source.idle.wait.ms", "10", 'p',                                       \
       "How long a source task waits after its source reported WEIR_IDLE, "    \
       "unless the source's waker (weir_waker_wake) ends the wait earlier.")   \
    XX("checkpoint.dir", "", 's',                                              \
       "Directory for checkpoints; setting it enables checkpointing and "      \
       "recovery from the latest completed checkpoint at run().")              \
    XX("checkpoint.interval.ms", "0", 'i',                                     \
       "Take a checkpoint every this many ms of processing time (0: off).")    \
    XX("checkpoint.every.records", "0", 'i',                                   \
       "Take a checkpoint every this many source records (0: off); "           \
       "deterministic, for files.")                                            \
    XX("checkpoint.retain", "2", 'p', "Completed checkpoints kept on disk.")   \
    XX("checkpoint.fsync", "true", 'b',                                        \
       "fsync checkpoint files and directories before a checkpoint is "        \
       "declared complete.")
