// gemma-run: runs a compiled Gemma module (.gmc) from the command line.
//
//   gemma-run MODEL.gmc -p "Why is the sky blue?"        one chat turn
//   gemma-run MODEL.gmc -p TEXT --raw -n 32 --temp 0     BOS + text, greedy
//   gemma-run MODEL.gmc -f BOOK.txt --ctx 131072         a long prompt
//   gemma-run MODEL.gmc --chat                           interactive chat
//
// Built only on the C API (gemmac/runtime.h), like any embedder. Errors are a
// message on stderr and a non-zero exit; bad input never crashes it.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "gemmac/runtime.h"

namespace {

using gemmac::tools::ParseInt;

const char kUsage[] =
    "usage: gemma-run MODEL.gmc [options]\n"
    "  -p PROMPT           prompt (one user turn of the chat format)\n"
    "  -f FILE             read the prompt from FILE instead\n"
    "  -n N                tokens to generate (default 128)\n"
    "  --raw               -p is fed as BOS + text, without the chat format\n"
    "  --chat              interactive multi-turn chat on stdin\n"
    "  --system TEXT       system prompt (chat format only)\n"
    "  --temp T            temperature; 0 = greedy (default 1)\n"
    "  --top-k K           (default 0 = off)\n"
    "  --top-p P           (default 1 = off)\n"
    "  --seed S            sampling seed (default 0)\n"
    "  --threads N         backend threads (default: the backend decides)\n"
    "  --ctx N             context length (default min(max_context, 4096));\n"
    "                      above 8192, or with --stats, the memory the "
    "session\n"
    "                      will need is printed to stderr before it allocates\n"
    "  --plugin PATH       run on this backend plugin library\n"
    "  --json              print {prompt_ids, generated_ids, text} as JSON\n"
    "  --dump-logits F.npy write the logits of every prompt position (not\n"
    "                      for modules compiled with --prefill-logits=last)\n"
    "  --dump-gen-logits F.npy  write the logits each generated token was\n"
    "                      sampled from, one row per reported token\n"
    "  --verify-weights    check the weight segment checksums first\n"
    "  --stats             print timings and memory to stderr\n";

struct Options {
  std::string model, prompt, system, plugin, dump_logits, dump_gen_logits;
  bool has_prompt = false, raw = false, chat = false, json = false;
  bool verify = false, stats = false;
  int32_t n = 128, top_k = 0, threads = 0, ctx = 0;
  float temp = 1.0f, top_p = 1.0f;
  uint64_t seed = 0;
};

int Fail(const std::string &msg) {
  std::fprintf(stderr, "gemma-run: %s\n", msg.c_str());
  return 1;
}

// Consumes a status: prints it and returns true when it is an error.
bool Failed(gemmac_status *st, const char *what = nullptr) {
  if (st == nullptr)
    return false;
  std::fprintf(stderr, "gemma-run: %s%s%s\n", what ? what : "",
               what ? ": " : "", gemmac_status_message(st));
  gemmac_status_free(st);
  return true;
}

// Returns an error message, or "" on success.
std::string ReadPromptFile(const char *path, std::string *out) {
  FILE *f = std::fopen(path, "rb");
  if (f == nullptr)
    return std::string("-f ") + path + ": cannot open: " + std::strerror(errno);
  out->clear();
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out->append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad)
    return std::string("-f ") + path + ": read error";
  return "";
}

bool ParseFloat(const char *s, float *out) {
  char *end = nullptr;
  errno = 0;
  float v = std::strtof(s, &end);
  if (errno || end == s || *end || v != v)
    return false;
  *out = v;
  return true;
}

// Returns an error message, or "" on success.
std::string ParseArgs(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char **v) {
      if (i + 1 >= argc)
        return false;
      *v = argv[++i];
      return true;
    };
    const char *v = nullptr;
    long long iv = 0;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--raw") {
      o->raw = true;
    } else if (a == "--chat") {
      o->chat = true;
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--verify-weights") {
      o->verify = true;
    } else if (a == "--stats") {
      o->stats = true;
    } else if (a == "-p" || a == "-f" || a == "--system" || a == "--plugin" ||
               a == "--dump-logits" || a == "--dump-gen-logits") {
      if (!value(&v))
        return a + " needs a value";
      if (a == "-p" || a == "-f") {
        if (o->has_prompt)
          return "give the prompt once: -p TEXT or -f FILE";
        o->has_prompt = true;
        o->prompt = v;
        if (a == "-f") {
          std::string err = ReadPromptFile(v, &o->prompt);
          if (!err.empty())
            return err;
        }
      } else if (a == "--dump-gen-logits") {
        o->dump_gen_logits = v;
      } else if (a == "--system") {
        o->system = v;
      } else if (a == "--plugin") {
        o->plugin = v;
      } else {
        o->dump_logits = v;
      }
    } else if (a == "-n" || a == "--top-k" || a == "--threads" ||
               a == "--ctx") {
      if (!value(&v) || !ParseInt(v, 0, 1 << 30, &iv))
        return a + " needs a non-negative integer";
      (a == "-n"          ? o->n
       : a == "--top-k"   ? o->top_k
       : a == "--threads" ? o->threads
                          : o->ctx) = static_cast<int32_t>(iv);
    } else if (a == "--seed") {
      if (!value(&v) || !ParseInt(v, 0, INT64_MAX, &iv))
        return "--seed needs a non-negative integer";
      o->seed = static_cast<uint64_t>(iv);
    } else if (a == "--temp" || a == "--top-p") {
      float f = 0;
      if (!value(&v) || !ParseFloat(v, &f) || f < 0)
        return a + " needs a non-negative number";
      (a == "--temp" ? o->temp : o->top_p) = f;
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option " + a + "\n" + kUsage;
    } else if (o->model.empty()) {
      o->model = a;
    } else {
      return "unexpected argument " + a;
    }
  }
  if (o->model.empty())
    return std::string("no model given\n") + kUsage;
  if (!o->has_prompt && !o->chat)
    return "nothing to do: pass -p PROMPT or --chat";
  if (o->raw && !o->system.empty())
    return "--system needs the chat format; it cannot go with --raw";
  if (o->chat &&
      (o->json || !o->dump_logits.empty() || !o->dump_gen_logits.empty()))
    return "--json, --dump-logits and --dump-gen-logits need -p, not --chat";
  return "";
}

// JSON string body: escapes quotes, backslashes and control characters and
// replaces bytes that are not valid UTF-8 with U+FFFD.
std::string JsonEscape(const std::string &s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    if (c < 0x80) {
      switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
      }
      ++i;
      continue;
    }
    size_t len = c >= 0xF0 && c <= 0xF4  ? 4
                 : c >= 0xE0             ? 3
                 : c >= 0xC2 && c < 0xE0 ? 2
                                         : 0;
    if (c >= 0xF5)
      len = 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && len == 3) {
      unsigned char c1 = s[i + 1];
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    } else if (ok && len == 4) {
      unsigned char c1 = s[i + 1];
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// NumPy .npy v1.0: float32, C order, shape (rows, cols).
bool WriteNpy(const std::string &path, const float *data, size_t rows,
              size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  FILE *f = std::fopen(path.c_str(), "wb");
  if (f == nullptr)
    return false;
  unsigned char pre[10] = {0x93,
                           'N',
                           'U',
                           'M',
                           'P',
                           'Y',
                           1,
                           0,
                           static_cast<unsigned char>(header.size() & 0xFF),
                           static_cast<unsigned char>(header.size() >> 8)};
  bool ok = std::fwrite(pre, 1, 10, f) == 10 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data, sizeof(float), rows * cols, f) == rows * cols;
  return std::fclose(f) == 0 && ok;
}

struct Stream {
  bool print = true;
  std::string text;
  // --dump-gen-logits: the row each reported token was sampled from.
  gemmac_session *session = nullptr;
  std::vector<float> logits;
  size_t cols = 0;
};

int32_t OnToken(void *user, int32_t token, const char *text, size_t len) {
  auto *s = static_cast<Stream *>(user);
  if (s->session != nullptr && token >= 0) {
    // During the callback the session's last row is still the one the
    // token was sampled from: the next decode runs after we return.
    size_t cols = 0;
    const float *row = gemmac_session_last_logits(s->session, &cols);
    if (row != nullptr) {
      s->cols = cols;
      s->logits.insert(s->logits.end(), row, row + cols);
    }
  }
  s->text.append(text, len);
  if (s->print && len) {
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
  }
  return 0;
}

std::string HumanBytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t(1) << 30))
    std::snprintf(buf, sizeof(buf), "%.1f GiB", b / 1073741824.0);
  else if (b >= (uint64_t(1) << 20))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1048576.0);
  else if (b >= 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%llu bytes",
                  static_cast<unsigned long long>(b));
  return buf;
}

// One line on stderr, before the session allocates: what it will need and
// what the device has. Returns false (after printing why) when the context
// cannot be had at all, e.g. above the model's max_context.
bool PrintSessionMemory(gemmac_runtime *rt, gemmac_module *m,
                        const gemmac_session_options &so, bool always) {
  gemmac_session_memory need = {};
  need.struct_size = sizeof(need);
  if (Failed(gemmac_module_session_memory(m, &so, &need)))
    return false;
  if (!always && need.context_length <= 8192)
    return true;
  std::string line = "session: context " + std::to_string(need.context_length) +
                     " needs KV cache " + HumanBytes(need.kv_cache_bytes) +
                     " + arena " + HumanBytes(need.arena_bytes) + " (" +
                     std::to_string(need.kv_cache_bytes) + " + " +
                     std::to_string(need.arena_bytes) + " bytes)";
  gemmac_device_info dev = {};
  dev.struct_size = sizeof(dev);
  gemmac_status *st = gemmac_runtime_device_info(rt, so.plugin_name, &dev);
  if (st == nullptr && dev.memory_available_bytes > 0)
    line += "; the device (" +
            std::string(dev.name, strnlen(dev.name, sizeof(dev.name))) +
            ") has " + HumanBytes(dev.memory_available_bytes) + " available";
  else
    line += "; the device does not report its free memory";
  gemmac_status_free(st);
  std::fprintf(stderr, "%s\n", line.c_str());
  return true;
}

void PrintStats(gemmac_session *s) {
  // The generated text (stdout, buffered when piped) ends before the stats.
  std::fflush(stdout);
  gemmac_session_stats st = {};
  st.struct_size = sizeof(st);
  if (Failed(gemmac_session_get_stats(s, &st)))
    return;
  std::string backend = gemmac_session_backend_name(s);
  const std::string device = gemmac_session_backend_description(s);
  if (!device.empty())
    backend += " (" + device + ")";
  const std::string graphs = gemmac_session_graph_summary(s);
  if (!graphs.empty())
    backend += "; " + graphs;
  const std::string fallback = gemmac_session_fallback_summary(s);
  if (!fallback.empty())
    backend += "; fallback: " + fallback;
  std::fprintf(stderr,
               "backend: %s\n"
               "prefill: %lld tokens in %.3f s (%.1f tokens/s)\n"
               "decode:  %lld tokens in %.3f s (%.1f tokens/s)\n"
               "time to first token: %.3f s\n"
               "memory: weights %.1f MiB (mapped), arena %.1f MiB, "
               "KV cache %.1f MiB (context %lld)\n",
               backend.c_str(), static_cast<long long>(st.prompt_tokens),
               st.prefill_seconds, st.prefill_tokens_per_second,
               static_cast<long long>(st.decode_tokens), st.decode_seconds,
               st.decode_tokens_per_second, st.time_to_first_token,
               st.weights_bytes / 1048576.0, st.arena_bytes / 1048576.0,
               st.kv_cache_bytes / 1048576.0,
               static_cast<long long>(st.context_length));
}

int RunChat(gemmac_session *s, const Options &o,
            const gemmac_sampling_params &p) {
  bool first = true;
  std::string line;
  while (true) {
    std::fputs("> ", stderr);
    std::fflush(stderr);
    if (!std::getline(std::cin, line))
      break;
    if (line.empty())
      continue;
    std::vector<gemmac_chat_message> msgs;
    if (first && !o.system.empty())
      msgs.push_back({sizeof(gemmac_chat_message), "system", o.system.c_str()});
    msgs.push_back({sizeof(gemmac_chat_message), "user", line.c_str()});
    if (Failed(gemmac_session_append_chat(s, msgs.data(), msgs.size(), 1)))
      return 1;
    first = false;
    Stream out;
    gemmac_status *st = gemmac_session_generate(s, &p, o.n, OnToken, &out);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (Failed(st))
      return 1;
    if (o.stats)
      PrintStats(s);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  std::string err = ParseArgs(argc, argv, &o);
  if (!err.empty())
    return Fail(err);

  gemmac_runtime *rt = nullptr;
  err = gemmac::tools::OpenRuntime("gemma-run", o.plugin, o.threads, &rt);
  if (!err.empty())
    return Fail(err);

  int rc = 1;
  gemmac_module *m = nullptr;
  gemmac_session *s = nullptr;
  do {
    if (Failed(gemmac_module_load(rt, o.model.c_str(), &m)))
      break;
    if (o.verify && Failed(gemmac_module_verify_checksums(m)))
      break;
    if (!o.dump_logits.empty()) {
      gemmac_module_info info = {};
      info.struct_size = sizeof(info);
      if (Failed(gemmac_module_get_info(m, &info)))
        break;
      // An older runtime library fills a smaller struct: the field is then
      // absent and the session itself refuses keep_prompt_logits.
      if (info.struct_size >=
              offsetof(gemmac_module_info, prefill_last_logits_only) +
                  sizeof(info.prefill_last_logits_only) &&
          info.prefill_last_logits_only) {
        Fail("--dump-logits writes the logits of every prompt position, but " +
             o.model +
             " was compiled with --prefill-logits=last: its prefill returns "
             "only the last position's logits. Recompile with "
             "--prefill-logits=all (the default) to dump them");
        break;
      }
    }
    gemmac_session_options so = {};
    so.struct_size = sizeof(so);
    so.context_length = o.ctx;
    so.num_threads = o.threads;
    so.batch_size = 1;
    so.keep_prompt_logits = o.dump_logits.empty() ? 0 : 1;
    if (!PrintSessionMemory(rt, m, so, o.stats))
      break;
    if (Failed(gemmac_session_create(rt, m, &so, &s)))
      break;

    gemmac_sampling_params p = {};
    p.struct_size = sizeof(p);
    p.temperature = o.temp;
    p.top_k = o.top_k;
    p.top_p = o.top_p;
    p.seed = o.seed;

    if (o.chat) {
      rc = RunChat(s, o, p);
      break;
    }
    if (o.raw) {
      int32_t *ids = nullptr;
      size_t n = 0;
      if (Failed(gemmac_session_tokenize(s, o.prompt.data(), o.prompt.size(), 1,
                                         &ids, &n)))
        break;
      gemmac_status *st = gemmac_session_append_tokens(s, ids, n);
      gemmac_free(ids);
      if (Failed(st))
        break;
    } else {
      std::vector<gemmac_chat_message> msgs;
      if (!o.system.empty())
        msgs.push_back(
            {sizeof(gemmac_chat_message), "system", o.system.c_str()});
      msgs.push_back({sizeof(gemmac_chat_message), "user", o.prompt.c_str()});
      if (Failed(gemmac_session_append_chat(s, msgs.data(), msgs.size(), 1)))
        break;
    }
    size_t prompt_len = 0;
    const int32_t *toks = gemmac_session_tokens(s, &prompt_len);
    std::vector<int32_t> prompt_ids(toks, toks + prompt_len);

    if (!o.dump_logits.empty()) {
      size_t rows = 0, cols = 0;
      const float *l = gemmac_session_prompt_logits(s, &rows, &cols);
      if (l == nullptr || !WriteNpy(o.dump_logits, l, rows, cols)) {
        Fail(o.dump_logits +
             ": cannot write the logits: " + std::strerror(errno));
        break;
      }
    }

    Stream out;
    out.print = !o.json;
    if (!o.dump_gen_logits.empty())
      out.session = s;
    gemmac_status *gen = gemmac_session_generate(s, &p, o.n, OnToken, &out);
    if (!o.json)
      std::fputs("\n", stdout);
    if (Failed(gen, "generate"))
      break;
    if (!o.dump_gen_logits.empty() &&
        !WriteNpy(o.dump_gen_logits, out.logits.data(),
                  out.cols ? out.logits.size() / out.cols : 0, out.cols)) {
      Fail(o.dump_gen_logits +
           ": cannot write the logits: " + std::strerror(errno));
      break;
    }
    if (o.json) {
      size_t total = 0;
      toks = gemmac_session_tokens(s, &total);
      std::string j = "{\"prompt_ids\": [";
      for (size_t i = 0; i < prompt_ids.size(); ++i)
        j += (i ? ", " : "") + std::to_string(prompt_ids[i]);
      j += "], \"generated_ids\": [";
      for (size_t i = prompt_len; i < total; ++i)
        j += (i > prompt_len ? ", " : "") + std::to_string(toks[i]);
      j += "], \"text\": \"" + JsonEscape(out.text) + "\"}\n";
      std::fputs(j.c_str(), stdout);
    }
    if (o.stats)
      PrintStats(s);
    rc = 0;
  } while (false);
  gemmac_session_release(s);
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
  return rc;
}
