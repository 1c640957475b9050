/* Embedding gemmac in a C program: load a module, generate from a prompt,
 * print the text as it streams.
 *
 *   gemmac_embed_example MODEL.gmc "Why is the sky blue?" [max_tokens]
 *
 * Backends: the CPU plugin when linked in statically, otherwise whatever
 * GEMMAC_PLUGIN_PATH or the install lib dir provides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemmac/runtime.h"
#ifdef GEMMAC_HAVE_CPU_STATIC
#include "gemmac/cpu_plugin.h"
#endif

/* Prints and frees a status; returns 1 if it was an error. */
static int failed(gemmac_status *status) {
  if (status == NULL)
    return 0;
  fprintf(stderr, "error: %s\n", gemmac_status_message(status));
  gemmac_status_free(status);
  return 1;
}

static int32_t print_token(void *user_data, int32_t token, const char *text,
                           size_t text_len) {
  (void)user_data;
  (void)token;
  fwrite(text, 1, text_len, stdout);
  fflush(stdout);
  return 0; /* keep going */
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gmc PROMPT [max_tokens]\n", argv[0]);
    return 2;
  }
  int32_t max_tokens = argc > 3 ? atoi(argv[3]) : 64;
  int rc = 1;
  gemmac_runtime *runtime = NULL;
  gemmac_module *module = NULL;
  gemmac_session *session = NULL;

  if (failed(gemmac_runtime_create(NULL, &runtime)))
    return 1;
#ifdef GEMMAC_HAVE_CPU_STATIC
  if (gemmac_runtime_plugin_count(runtime) == 0 &&
      failed(gemmac_runtime_register_plugin(runtime, gemmac_cpu_plugin_entry,
                                            "cpu")))
    goto done;
#endif
  if (failed(gemmac_module_load(runtime, argv[1], &module)))
    goto done;
  if (failed(gemmac_session_create(runtime, module, NULL, &session)))
    goto done;

  /* One user turn in the model's chat format, then the model's reply. */
  gemmac_chat_message turn = {sizeof(turn), "user", argv[2]};
  if (failed(gemmac_session_append_chat(session, &turn, 1, 1)))
    goto done;
  gemmac_sampling_params params;
  memset(&params, 0, sizeof(params));
  params.struct_size = sizeof(params);
  params.temperature = 0.0f; /* greedy */
  params.top_p = 1.0f;
  if (failed(gemmac_session_generate(session, &params, max_tokens, print_token,
                                     NULL)))
    goto done;
  printf("\n");

  gemmac_session_stats stats;
  stats.struct_size = sizeof(stats);
  if (!failed(gemmac_session_get_stats(session, &stats)))
    fprintf(stderr, "%lld prompt tokens, %lld generated, %.1f tokens/s\n",
            (long long)stats.prompt_tokens, (long long)stats.generated_tokens,
            stats.decode_tokens_per_second);
  rc = 0;
done:
  /* Release in any order: each object keeps what it uses alive. */
  gemmac_session_release(session);
  gemmac_module_release(module);
  gemmac_runtime_release(runtime);
  return rc;
}
