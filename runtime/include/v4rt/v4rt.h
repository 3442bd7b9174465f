/*===- v4rt.h - the v4 runtime C API -----------------------------*- C -*-===*
 *
 * Loads a compiled model (.v4a artifact from v4c), binds its weights from a
 * safetensors checkpoint by name, and runs prefill chunks and decode steps
 * in sessions that each own their decode state. Links no MLIR or LLVM.
 *
 * Conventions (docs/STYLE.md 3.5): every fallible call returns a
 * v4rt_status_t, NULL on success, and hands its results out through output
 * parameters (which come last); no call reports failure with a sentinel
 * value. A non-NULL status owns its message and must be freed with
 * v4rt_status_free. Handles are opaque and reference counted: each handle
 * type has _retain and _release, a new handle holds one reference, the
 * release of the last reference frees it, _release(NULL) is a no-op, and
 * the counts are atomic (any thread may retain or release). A session holds
 * a reference to its model and a detokenizer one to its tokenizer, so
 * either may be released first. No exception or C++ type crosses this
 * header.
 *
 * Thread safety: a loaded model is immutable after v4rt_model_load and may
 * be shared by any number of threads; every session holds its own buffers
 * and decode state, so distinct sessions run concurrently, but one session
 * must be used by one thread at a time.
 *
 *===----------------------------------------------------------------------===*/
#ifndef V4RT_V4RT_H
#define V4RT_V4RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version of this header. The rule: it changes (and with it the
 * SONAME, libv4rt.so.<ABI>, and the symbol version V4RT_<ABI>) whenever a
 * program built against the previous header could misbehave with the new
 * library: a function removed or its signature or meaning changed, an enum
 * value renumbered, a field of a struct moved, retyped or removed. It does
 * not change when functions or enum values are added, or when fields are
 * appended to a struct that carries a struct_size (the library fills only
 * the fields the caller's struct_size covers); those raise the minor
 * version. A program calls v4rt_check_abi(V4RT_ABI_VERSION) once, before
 * any other call: linked (statically, or through dlopen, or with a header
 * copied from another release) to a library of another ABI it gets a
 * V4RT_INCOMPATIBLE status naming both versions instead of undefined
 * behaviour. */
#define V4RT_ABI_VERSION 2

/*===-------------------------------- status
 * --------------------------------===*/

typedef enum v4rt_status_code_t {
  V4RT_OK = 0,
  V4RT_INVALID_ARGUMENT = 1,
  V4RT_NOT_FOUND = 2,
  V4RT_FAILED_PRECONDITION = 3,
  V4RT_OUT_OF_RANGE = 4,
  V4RT_UNAVAILABLE = 5,
  V4RT_INCOMPATIBLE = 6,
  V4RT_RESOURCE_EXHAUSTED = 7,
  V4RT_INTERNAL = 8,
} v4rt_status_code_t;

typedef struct v4rt_status_s *v4rt_status_t;

/* The code of `status` (V4RT_OK for NULL). */
v4rt_status_code_t v4rt_status_code(v4rt_status_t status);
/* The message of `status` ("" for NULL); valid until the status is freed. */
const char *v4rt_status_message(v4rt_status_t status);
/* A status is not a shared handle: it has one owner, the caller that
 * received it, who frees it once (no _retain/_release). */
void v4rt_status_free(v4rt_status_t status);

/*===------------------------------ version
 * ---------------------------------===*/

typedef struct v4rt_version_t {
  int major; /* the project's semantic version (0.1.0: 0, 1, 0) */
  int minor;
  int patch;
  int abi;            /* the library's V4RT_ABI_VERSION */
  const char *string; /* "0.1.0" */
} v4rt_version_t;

/* The version of the library linked (not of the header); static storage. */
const v4rt_version_t *v4rt_version(void);
/* NULL when `header_abi` (pass V4RT_ABI_VERSION) is the library's ABI
 * version, else V4RT_INCOMPATIBLE naming both. */
v4rt_status_t v4rt_check_abi(int header_abi);

/*===-------------------------------- model
 * ---------------------------------===*/

typedef struct v4rt_model_t v4rt_model_t;

/* Load options. v4rt_model_options_initialize sets struct_size to
 * sizeof(v4rt_model_options_t) of the caller's header and every field to its
 * default; the library reads only the fields struct_size covers (the others
 * keep their defaults), so new fields are appended without an ABI change.
 * ABI 2 added struct_size (ABI 1 had none) with check_weights and
 * expected_sha256. */
typedef struct v4rt_model_options_t {
  size_t struct_size;
  /* Path of the safetensors checkpoint (file, directory or index.json). */
  const char *checkpoint_path;
  /* Bytes of device memory the model and its sessions may use; 0: what the
   * device has available. Loading and session creation refuse (with
   * V4RT_RESOURCE_EXHAUSTED, naming both numbers and the compile flags that
   * would make it fit) before allocating anything that would not fit. */
  uint64_t memory_limit;
  /* 1: read every tensor of the checkpoint once at load and refuse the
   * first NaN or Inf (bf16, f16, f32; an e4m3fn NaN byte 0x7F/0xFF; an e8m0
   * scale 0xFF) with V4RT_INVALID_ARGUMENT naming the tensor and the
   * element [VAL-1]. Costs one pass over the weights; 0 (default): off.
   * Without it a non-finite weight shows up as a NaN/Inf logit, which
   * v4rt_session_run refuses [VAL-2]. */
  int check_weights;
  /* NULL (default), or the SHA-256 the artifact file must have: 64
   * hexadecimal digits, either case (e.g. the output of sha256sum). For
   * artifacts that cross a trust boundary: an artifact is executable code,
   * like a shared library. Checked before the artifact is parsed or any of
   * its code loaded: V4RT_INVALID_ARGUMENT for a malformed digest [ARG],
   * V4RT_FAILED_PRECONDITION naming expected and found on a mismatch
   * [DIG-1]. The file is read twice (hash, then load): the path must not be
   * writable by whoever the digest guards against. */
  const char *expected_sha256;
  /* Host threads a CPU model runs each kernel launch on, the calling thread
   * included: 0 (default) takes V4RT_NUM_THREADS when set, else every core;
   * above 4096 is V4RT_INVALID_ARGUMENT [ARG]. v4rt_model_info reports the
   * count in use. Appended: a struct_size that ends before it leaves the
   * default. */
  uint32_t num_threads;
  /* The device to run on: "cpu", "cuda" (the first CUDA device) or
   * "cuda:N" (CUDA device N); NULL or "" (default): the device of the
   * artifact's first target. The artifact must hold kernels for the
   * device's target (v4c --target=cpu,sm_90a builds both): otherwise
   * V4RT_INCOMPATIBLE naming the targets it has [RT-3]. An unknown
   * spelling is V4RT_INVALID_ARGUMENT [ARG]. Appended: a struct_size that
   * ends before it leaves the default. */
  const char *device;
  /* 1: bind deterministic synthetic weights instead of a checkpoint, for
   * models that cannot travel with their weights (benchmarks, bring-up);
   * checkpoint_path must then be NULL or "" (both: V4RT_INVALID_ARGUMENT
   * [RT-9]). Every parameter of the artifact's manifest gets values that
   * depend only on (synthetic_seed, the tensor's name, the element index),
   * in its dtype and scale format: bf16/f32 after v4-gen-checkpoint's
   * distributions, FP8 e4m3 and packed FP4 e2m1 quantised with their e8m0
   * block scales, index tables in range, derived parameters by their rule.
   * Generated on the host threads of num_threads, the same bytes at any
   * count, and written to (or uploaded into) the device's buffers. Not
   * v4-gen-checkpoint's bytes for the same seed. check_weights is then
   * ignored (the values are finite). 0 (default): a checkpoint.
   * v4rt_model_info reports it. Appended: a struct_size that ends before
   * them leaves the default. */
  int synthetic_weights;
  uint64_t synthetic_seed;
  /* A partitioned artifact (v4c --ep N) runs as one of N ranks: rank and
   * world come from the MPI launcher (mpirun -np N), and the model loads
   * only its rank's shard of the weights. Seconds each collective may wait
   * for the other ranks before it fails with V4RT_UNAVAILABLE [RT-10] (a
   * rank that died or stalled); 0 (default): 300. Negative or NaN:
   * V4RT_INVALID_ARGUMENT [ARG]. Appended: a struct_size that ends before
   * it leaves the default. */
  double collective_timeout_s;
} v4rt_model_options_t;

void v4rt_model_options_initialize(v4rt_model_options_t *options);

/* Checks options->expected_sha256 when set, then loads and verifies the
 * artifact, loads its CPU kernels and binds every parameter of its manifest
 * from the checkpoint (all mismatches reported at once) or, with
 * options->synthetic_weights, with synthetic weights, then, with
 * options->check_weights, scans the checkpoint for NaN/Inf. An
 * options->struct_size of 0 or above the library's is V4RT_INVALID_ARGUMENT
 * (call v4rt_model_options_initialize). */
v4rt_status_t v4rt_model_load(const char *artifact_path,
                              const v4rt_model_options_t *options,
                              v4rt_model_t **out_model);
void v4rt_model_retain(v4rt_model_t *model);
void v4rt_model_release(v4rt_model_t *model);

/* What v4rt_model_info reports. The caller sets struct_size to
 * sizeof(v4rt_model_info_t) before the call; the library fills the fields
 * that struct_size covers and sets struct_size to the bytes it wrote, so a
 * program built against an older header (a shorter struct) and a library
 * with more fields, or the reverse, work together. New fields are only
 * ever appended. */
typedef struct v4rt_model_info_t {
  size_t struct_size;
  int64_t batch;       /* sequences per call (compiled bound) */
  int64_t max_context; /* longest sequence (compiled bound) */
  int64_t max_chunk;   /* most tokens per call */
  int64_t vocab_size;
  int64_t num_outputs; /* 1 (logits) + MTP blocks */
  /* Logit positions per sequence of a call: 0 every position ([batch,
   * tokens, vocab]), 1 the last position only ([batch, 1, vocab]; the
   * default of v4c, --logits=all compiles the other). */
  int64_t logits_positions;
  /* Weight bytes served from the mapped checkpoint (no copy), and copied
   * into prepared buffers (per-expert stacks). */
  int64_t weights_mapped_bytes;
  int64_t weights_prepared_bytes;
  /* BOS and EOS ids of the model's config.json (-1: it names none);
   * generation stops at EOS. */
  int64_t bos_token_id;
  int64_t eos_token_id;
  /* Device memory at the compiled bounds (what loading and session creation
   * check against the memory limit): the model's weights, and what each
   * session allocates: session_bytes = session_state_bytes (decode state at
   * batch x max_context) + session_activation_bytes (the activation arena
   * and the activations outside it, at max_chunk) + session_io_bytes
   * (inputs and outputs). */
  int64_t weights_bytes;
  int64_t session_bytes;
  int64_t session_state_bytes;
  int64_t session_activation_bytes;
  int64_t session_io_bytes;
  /* The numerics the model was compiled in (v4c --numerics, --fake-quant;
   * the artifact's 1.2 numerics table): "production" or "fp32", and "all",
   * "kv" or "none". Static strings. */
  const char *numerics;
  const char *fake_quant;
  /* Host threads a launch runs on (v4rt_model_options_t.num_threads
   * resolved). Appended: filled when struct_size covers it. */
  int64_t num_threads;
  /* 1 when the weights are synthetic (v4rt_model_options_t
   * synthetic_weights), with their seed; 0 when they come from a
   * checkpoint. Appended: filled when struct_size covers them. */
  int64_t synthetic_weights;
  uint64_t synthetic_seed;
  /* The rank this process runs as and the ranks of the artifact's
   * partition (0 and 1 for an artifact of one rank). Appended: filled
   * when struct_size covers them. */
  int64_t rank;
  int64_t world_size;
  /* 1 when every rank runs its own sequences (v4c --dp-attention): each
   * rank's inputs and logits are its own; 0 when every rank runs the same
   * sequences and computes the same logits. Appended: filled when
   * struct_size covers it. */
  int64_t data_parallel_attention;
  /* The ranks the routed experts (v4c --ep) and the attention heads and
   * shared expert (v4c --tp) span: 1, or world_size. Appended: filled when
   * struct_size covers them. */
  int64_t expert_parallel;
  int64_t tensor_parallel;
} v4rt_model_info_t;

/* V4RT_INVALID_ARGUMENT for a NULL argument or a struct_size shorter than
 * the struct of ABI 1 (every field up to session_io_bytes). */
v4rt_status_t v4rt_model_info(const v4rt_model_t *model,
                              v4rt_model_info_t *info);

/*===------------------------------- session
 * --------------------------------===*/

typedef struct v4rt_session_t v4rt_session_t;

/* Allocates the session's buffers and resets its decode state. */
/* The session holds a reference to `model` until it is freed. */
v4rt_status_t v4rt_session_create(v4rt_model_t *model,
                                  v4rt_session_t **out_session);
void v4rt_session_retain(v4rt_session_t *session);
void v4rt_session_release(v4rt_session_t *session);
/* Starts new sequences in every row: state reset, positions 0. */
v4rt_status_t v4rt_session_reset(v4rt_session_t *session);
/* Starts a new sequence in row `sequence` only (its state reset, its
 * position 0) while the other rows go on: continuous batching. */
v4rt_status_t v4rt_session_reset_sequence(v4rt_session_t *session,
                                          int64_t sequence);
/* Tokens row `sequence` has consumed (the start position of its next
 * call); V4RT_OUT_OF_RANGE when `sequence` is outside [0, batch). */
v4rt_status_t v4rt_session_position(const v4rt_session_t *session,
                                    int64_t sequence, int64_t *out_position);

/* Runs one chunk of `tokens` tokens for every sequence of the batch, each
 * at its own position:
 * ids [batch, tokens] (row-major). next_ids, same shape, feeds the MTP block
 * (NULL: the ids shifted by one, the last repeated). Writes the logits,
 * [batch, tokens, vocab] floats or [batch, 1, vocab] for a model with
 * logits_positions = 1, to logits (capacity logits_capacity floats), and
 * the MTP logits likewise when mtp_logits is not NULL (when NULL, the
 * launches only the MTP logits need are skipped; the MTP block's state still
 * advances, so a later call may ask for them). A prefill is a chunk at
 * position 0; a decode step is a chunk of one token. A NaN or Inf among the
 * logits written is V4RT_FAILED_PRECONDITION naming the sequence, position
 * and token id [VAL-2] (broken weights or numerics: load with
 * check_weights to find the tensor); the positions have advanced. */
v4rt_status_t v4rt_session_run(v4rt_session_t *session, const int64_t *ids,
                               const int64_t *next_ids, int64_t tokens,
                               float *logits, size_t logits_capacity,
                               float *mtp_logits, size_t mtp_capacity);

/* Per-step timing of a session (v4-run --profile). While profiling is on,
 * each step of a run (a kernel launch or a collective) is waited for before
 * the next one starts, so the steps' times add up to the run's wall time
 * (nothing overlaps, a decode step is not replayed from a CUDA graph):
 * turn it on to find where a step's time goes, not to time the model. */
typedef enum v4rt_profile_kind_t {
  V4RT_PROFILE_KERNEL = 0,     /* a kernel launch */
  V4RT_PROFILE_COLLECTIVE = 1, /* a collective with the other ranks */
  V4RT_PROFILE_CALL = 2 /* whole v4rt_session_run calls: inputs, steps and
                           outputs */
} v4rt_profile_kind_t;

typedef struct v4rt_profile_entry_t {
  /* The kernel's name in the artifact ("k24_moe_experts"), the
   * collective's ("all_reduce_sum", ...) or the entry point's ("step");
   * valid while the session lives. */
  const char *name;
  int32_t kind; /* v4rt_profile_kind_t */
  /* 1: one-token calls (decode steps); 0: calls of several tokens. */
  int32_t one_token;
  int64_t calls;
  double seconds; /* wall clock, summed over the calls */
} v4rt_profile_entry_t;

/* Turns profiling on (enabled != 0) or off, and clears what was measured. */
v4rt_status_t v4rt_session_set_profiling(v4rt_session_t *session, int enabled);
/* What was measured since profiling was last turned on, most time first:
 * *out_count is the number of entries, of which the first min(capacity,
 * *out_count) are written to `entries` (NULL when capacity is 0). */
v4rt_status_t v4rt_session_profile(const v4rt_session_t *session,
                                   v4rt_profile_entry_t *entries,
                                   size_t capacity, size_t *out_count);

/*===------------------------------- sampling
 * -------------------------------===*/

typedef struct v4rt_sampling_t {
  float temperature; /* 0: greedy (arg max, lowest id on ties) */
  float top_p;       /* 1: no nucleus cut */
  uint64_t seed;
} v4rt_sampling_t;

void v4rt_sampling_initialize(v4rt_sampling_t *sampling);
/* Samples one token from `vocab` logits into *out_token; `state` is the
 * caller's RNG state (initialise it with the seed), needed when
 * temperature > 0. `sampling` NULL is greedy. V4RT_INVALID_ARGUMENT for
 * NULL logits or out_token, vocab < 1, a temperature that is not finite
 * and >= 0, top_p outside (0, 1] (NaN included; checked at every
 * temperature), or a missing state; a NaN or Inf logit is refused too
 * (rule VAL-2), never sampled. */
v4rt_status_t v4rt_sample(const float *logits, int64_t vocab,
                          const v4rt_sampling_t *sampling, uint64_t *state,
                          int64_t *out_token);

/*===------------------------------ tokenizer
 * ------------------------------===*/

/* A Hugging Face tokenizer.json of the byte-level BPE family (DeepSeek's,
 * GPT-2's, ...). Immutable after load: one tokenizer may be used by any
 * number of threads at once. Reference counted like the other handles. */
typedef struct v4rt_tokenizer_t v4rt_tokenizer_t;

/* Loads `path`: a tokenizer.json file or a directory holding one (whose
 * tokenizer_config.json and config.json give BOS and EOS when present).
 * An unsupported component type is an error naming it (rule TK-2). */
v4rt_status_t v4rt_tokenizer_load(const char *path,
                                  v4rt_tokenizer_t **out_tokenizer);
void v4rt_tokenizer_retain(v4rt_tokenizer_t *tokenizer);
void v4rt_tokenizer_release(v4rt_tokenizer_t *tokenizer);

/* struct_size as in v4rt_model_info_t: set by the caller, appended to
 * only. */
typedef struct v4rt_tokenizer_info_t {
  size_t struct_size;
  int64_t vocab_size; /* one more than the largest id */
  int32_t bos_id;     /* -1 when the tokenizer's folder names none */
  int32_t eos_id;     /* -1 when the tokenizer's folder names none */
} v4rt_tokenizer_info_t;

/* V4RT_INVALID_ARGUMENT for a NULL argument or a struct_size shorter than
 * the struct of ABI 1 (every field up to eos_id). */
v4rt_status_t v4rt_tokenizer_info(const v4rt_tokenizer_t *tokenizer,
                                  v4rt_tokenizer_info_t *info);

/* Encodes `length` bytes of UTF-8 `text`; special tokens written in the text
 * become their ids, no BOS/EOS is added. Writes min(count, capacity) ids
 * and the count to *out_count; V4RT_OUT_OF_RANGE when capacity is short
 * (call again with *out_count). Invalid UTF-8 is V4RT_INVALID_ARGUMENT. */
v4rt_status_t v4rt_tokenizer_encode(const v4rt_tokenizer_t *tokenizer,
                                    const char *text, size_t length,
                                    int32_t *ids, size_t capacity,
                                    size_t *out_count);
/* Decodes `count` ids to UTF-8 (special tokens kept, invalid byte
 * sequences as U+FFFD); writes min(length, capacity) bytes, no terminator,
 * and the length to *out_length; V4RT_OUT_OF_RANGE when capacity is short
 * or an id is outside the vocabulary. */
v4rt_status_t v4rt_tokenizer_decode(const v4rt_tokenizer_t *tokenizer,
                                    const int32_t *ids, size_t count,
                                    char *text, size_t capacity,
                                    size_t *out_length);
/* The id of `token` (a NUL-terminated vocabulary entry or added token);
 * V4RT_NOT_FOUND when it has none. */
v4rt_status_t v4rt_tokenizer_token_id(const v4rt_tokenizer_t *tokenizer,
                                      const char *token, int32_t *out_id);

/* Streaming detokenization: one token at a time, handing out only complete
 * UTF-8 characters, so text already printed never changes. Holds a
 * reference to its tokenizer. Thread-compatible. */
typedef struct v4rt_detokenizer_t v4rt_detokenizer_t;

v4rt_status_t v4rt_detokenizer_create(v4rt_tokenizer_t *tokenizer,
                                      v4rt_detokenizer_t **out_detokenizer);
void v4rt_detokenizer_retain(v4rt_detokenizer_t *detokenizer);
void v4rt_detokenizer_release(v4rt_detokenizer_t *detokenizer);
/* Feeds token `id`; *out_text and *out_length give the text it completes
 * (possibly empty), owned by the detokenizer until its next call. */
v4rt_status_t v4rt_detokenizer_push(v4rt_detokenizer_t *detokenizer, int32_t id,
                                    const char **out_text, size_t *out_length);
/* Ends the stream: an unfinished character comes out as U+FFFD. */
v4rt_status_t v4rt_detokenizer_finish(v4rt_detokenizer_t *detokenizer,
                                      const char **out_text,
                                      size_t *out_length);

/*===---------------------------- chat encoding
 * -----------------------------===*/

/* DeepSeek-V4's prompt format (its released encoding module): BOS, system
 * prompt, <｜User｜>…<｜Assistant｜> turns, chat or thinking mode, the
 * reasoning-effort preamble, earlier turns' reasoning dropped. */
typedef struct v4rt_chat_message_t {
  const char *role;      /* system, user, developer, assistant */
  const char *content;   /* NUL-terminated UTF-8 */
  const char *reasoning; /* an assistant turn's reasoning, or NULL */
} v4rt_chat_message_t;

typedef struct v4rt_chat_options_t {
  int thinking;                 /* 0: chat mode, 1: thinking mode */
  int drop_thinking;            /* 1: drop reasoning before the last user */
  int add_bos;                  /* 1: start with BOS */
  const char *reasoning_effort; /* NULL, "high" or "max" */
} v4rt_chat_options_t;

void v4rt_chat_options_initialize(v4rt_chat_options_t *options);
/* Writes the prompt text like v4rt_tokenizer_decode writes text. */
v4rt_status_t v4rt_chat_encode_v4(const v4rt_chat_message_t *messages,
                                  size_t count,
                                  const v4rt_chat_options_t *options,
                                  char *text, size_t capacity,
                                  size_t *out_length);

#ifdef __cplusplus
}
#endif

#endif /* V4RT_V4RT_H */
