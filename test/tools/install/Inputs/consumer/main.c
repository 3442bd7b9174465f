/* A C program that embeds the installed v4 runtime: loads a model, runs a
 * prompt and greedily generates tokens through the C API. */
#include <v4rt/v4rt.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(v4rt_status_t st) {
  fprintf(stderr, "error: %s\n", v4rt_status_message(st));
  v4rt_status_free(st);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: consumer MODEL.v4a CHECKPOINT N\n");
    return 2;
  }
  v4rt_status_t st = v4rt_check_abi(V4RT_ABI_VERSION);
  if (st)
    return fail(st);
  const v4rt_version_t *version = v4rt_version();
  fprintf(stderr, "libv4rt %s (ABI %d)\n", version->string, version->abi);
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  options.checkpoint_path = argv[2];
  v4rt_model_t *model = NULL;
  if ((st = v4rt_model_load(argv[1], &options, &model)))
    return fail(st);
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  if ((st = v4rt_model_info(model, &info)))
    return fail(st);
  v4rt_session_t *session = NULL;
  if ((st = v4rt_session_create(model, &session)))
    return fail(st);
  int64_t n = atoi(argv[3]);
  int64_t prompt[4] = {3, 1, 4, 1};
  float *logits = malloc(sizeof(float) * (size_t)(4 * info.vocab_size));
  if ((st = v4rt_session_run(session, prompt, NULL, 4, logits,
                             (size_t)(4 * info.vocab_size), NULL, 0)))
    return fail(st);
  int64_t rows = info.logits_positions ? 1 : 4;
  int64_t next = -1;
  if ((st = v4rt_sample(logits + (rows - 1) * info.vocab_size, info.vocab_size,
                        NULL, NULL, &next)))
    return fail(st);
  printf("generated:");
  for (int64_t i = 0; i < n; ++i) {
    printf(" %lld", (long long)next);
    if ((st = v4rt_session_run(session, &next, NULL, 1, logits,
                               (size_t)info.vocab_size, NULL, 0)))
      return fail(st);
    if ((st = v4rt_sample(logits, info.vocab_size, NULL, NULL, &next)))
      return fail(st);
  }
  printf("\n");
  free(logits);
  v4rt_session_release(session);
  v4rt_model_release(model);
  return 0;
}
