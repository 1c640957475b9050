// gemma-kld: measures how far a module's predictions drift from a reference
// module's on a text: the usual check of a quantized model, as llama.cpp's
// `perplexity --kl-divergence` does it.
//
//   gemma-kld REF.gmc TEST.gmc --text FILE [--ctx N] [--json]
//
// The text is tokenized once with REF's tokenizer (TEST's must give the same
// ids) and cut into windows of --ctx tokens, each starting with BOS. Both
// modules prefill every window and keep the logits of every position
// (gemmac_session_options.keep_prompt_logits). The positions of the second
// half of each window are scored, so every scored prediction sees at least
// ctx/2 tokens of context (--all-positions scores them all):
//   KL(P_ref || P_test) = sum_v p_ref(v) (log p_ref(v) - log p_test(v)),
//   top-1 agreement, and each module's next-token NLL (perplexity).
// Softmaxes are computed in double with max-subtraction, so identical logits
// give a KL divergence of exactly 0.
//
// Built only on the public runtime API (gemmac/runtime.hpp and runtime.h),
// like any embedding application. Errors are a message on stderr and exit
// status 1; bad usage exits with status 2.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gemmac/runtime.hpp"

namespace {

using gemmac::tools::JsonString;
using gemmac::tools::ParseInt;

namespace g = gemmac::api;

const char kUsage[] =
    "usage: gemma-kld REF.gmc TEST.gmc --text FILE [options]\n"
    "  --text FILE       plain text to score (UTF-8)\n"
    "  --ctx N           window length in tokens, BOS included (default 512,\n"
    "                    capped by the modules' max_context)\n"
    "  --all-positions   score every position of a window, not its second "
    "half\n"
    "  --json            print one JSON object instead of the table\n"
    "  --threads N       backend threads (default: the backend decides)\n"
    "  --plugin PATH     run both modules on this backend plugin library\n";

constexpr int32_t kDefaultCtx = 512;

struct Options {
  std::string ref, test, text, plugin;
  int32_t ctx = 0; // 0: default
  int32_t threads = 0;
  bool json = false, all_positions = false;
};

int Fail(const std::string &msg) {
  std::fprintf(stderr, "gemma-kld: error: %s\n", msg.c_str());
  return 1;
}

// Returns an error message, or "" on success.
std::string ParseArgs(int argc, char **argv, Options *o) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--all-positions") {
      o->all_positions = true;
    } else if (a == "--text" || a == "--plugin") {
      const char *v = value();
      if (v == nullptr)
        return a + " needs a value";
      (a == "--text" ? o->text : o->plugin) = v;
    } else if (a == "--ctx" || a == "--threads") {
      const char *v = value();
      long long iv = 0;
      long long lo = a == "--ctx" ? 4 : 0;
      if (v == nullptr || !ParseInt(v, lo, 1 << 30, &iv))
        return a + " needs an integer >= " + std::to_string(lo) + ", got " +
               (v ? std::string("'") + v + "'" : std::string("nothing"));
      (a == "--ctx" ? o->ctx : o->threads) = static_cast<int32_t>(iv);
    } else if (a.size() > 1 && a[0] == '-') {
      return "unknown option " + a + "\n" + kUsage;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2)
    return "expected two modules (REF.gmc TEST.gmc), got " +
           std::to_string(positional.size()) + "\n" + kUsage;
  o->ref = positional[0];
  o->test = positional[1];
  if (o->text.empty())
    return std::string("no text given: pass --text FILE\n") + kUsage;
  return "";
}

// Reads a whole file; "" in *err on success.
std::string ReadFile(const std::string &path, std::string *err) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
    *err = path + ": is a directory; expected a text file";
    return "";
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = path + ": cannot open the text file: " + std::strerror(errno);
    return "";
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) {
    *err = path + ": cannot read the text file";
    return "";
  }
  return ss.str();
}

std::string Num(double v) {
  if (!std::isfinite(v))
    return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// One module, loaded with a session that keeps every position's logits.
struct Side {
  std::string path;
  g::ModuleRef module;
  gemmac_module_info info{};
  g::SessionRef session;
};

g::Status Open(g::Runtime &rt, const std::string &path, Side *side) {
  side->path = path;
  g::Status st = rt.Load(path, &side->module);
  if (!st.ok())
    return st;
  return side->module.Info(&side->info);
}

// log-softmax of one logits row, in double with max-subtraction.
void LogSoftmax(const float *x, size_t n, std::vector<double> *out) {
  out->resize(n);
  double mx = x[0];
  for (size_t i = 1; i < n; ++i)
    mx = std::max(mx, double(x[i]));
  double sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += std::exp(double(x[i]) - mx);
  double lse = mx + std::log(sum);
  for (size_t i = 0; i < n; ++i)
    (*out)[i] = double(x[i]) - lse;
}

size_t ArgMax(const float *x, size_t n) {
  return static_cast<size_t>(std::max_element(x, x + n) - x);
}

// Linear interpolation between closest ranks (NumPy's default percentile).
double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q / 100.0 * double(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

// Index of the first non-finite value, or n.
size_t FirstNonFinite(const float *x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      return i;
  return n;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  std::string err = ParseArgs(argc, argv, &o);
  if (!err.empty()) {
    std::fprintf(stderr, "gemma-kld: error: %s\n", err.c_str());
    return 2;
  }

  // The text first: a missing or empty file needs no module loaded.
  std::string text = ReadFile(o.text, &err);
  if (!err.empty())
    return Fail(err);
  if (text.empty())
    return Fail(o.text + ": the text file is empty; expected plain text");

  gemmac_runtime *raw = nullptr;
  err = gemmac::tools::OpenRuntime("gemma-kld", o.plugin, o.threads, &raw);
  if (!err.empty())
    return Fail(err);
  g::Runtime rt(raw);
  g::Status st;

  Side ref, test;
  if (!(st = Open(rt, o.ref, &ref)).ok() ||
      !(st = Open(rt, o.test, &test)).ok())
    return Fail(st.message());
  if (ref.info.tokenizer_vocab_size != test.info.tokenizer_vocab_size)
    return Fail("the modules score different vocabularies: " + o.ref + " has " +
                std::to_string(ref.info.tokenizer_vocab_size) +
                " tokenizer pieces, " + o.test + " has " +
                std::to_string(test.info.tokenizer_vocab_size) +
                "; KL divergence needs the same vocabulary");

  // Window length: BOS + ctx-1 text tokens, within both modules' context.
  int32_t max_ctx = std::min(ref.info.max_context, test.info.max_context);
  int32_t ctx = o.ctx ? o.ctx : kDefaultCtx;
  if (ctx > max_ctx) {
    if (o.ctx)
      std::fprintf(stderr,
                   "gemma-kld: note: --ctx %d is above the modules' "
                   "max_context; using %d\n",
                   o.ctx, max_ctx);
    ctx = max_ctx;
  }
  if (ctx < 4)
    return Fail("the modules' max_context is " + std::to_string(max_ctx) +
                "; a window needs at least 4 tokens");

  g::Runtime::SessionOptions so;
  so.context_length = ctx;
  so.num_threads = o.threads;
  so.keep_prompt_logits = true;
  for (Side *s : {&ref, &test}) {
    st = rt.NewSession(s->module, so, &s->session);
    if (!st.ok())
      return Fail(s->path + ": " + st.message());
  }

  // Both tokenizers must agree on the text, or the positions would not
  // correspond; comparing the ids catches any difference that matters here.
  std::vector<int32_t> ids, test_ids;
  if (!(st = ref.session.Tokenize(text, false, &ids)).ok())
    return Fail(o.ref + ": tokenizing " + o.text + ": " + st.message());
  if (!(st = test.session.Tokenize(text, false, &test_ids)).ok())
    return Fail(o.test + ": tokenizing " + o.text + ": " + st.message());
  if (ids != test_ids) {
    size_t i = 0;
    while (i < ids.size() && i < test_ids.size() && ids[i] == test_ids[i])
      ++i;
    auto at = [&](const std::vector<int32_t> &v) {
      return i < v.size() ? std::to_string(v[i]) : std::string("(end)");
    };
    return Fail("the modules' tokenizers differ: " + o.text + " is " +
                std::to_string(ids.size()) + " tokens for " + o.ref + " and " +
                std::to_string(test_ids.size()) + " for " + o.test +
                "; first difference at token " + std::to_string(i) + " (" +
                at(ids) + " vs " + at(test_ids) + ")");
  }
  if (ids.empty())
    return Fail(o.text + ": the text gives no tokens");

  // Windows of `ctx` tokens: BOS (when the module has one) then `per` text
  // tokens, back to back. A tail shorter than a window is left out, as
  // llama.cpp does, so every window has the same context; a text shorter
  // than one window becomes a single shorter window.
  const int32_t bos = ref.info.bos_id;
  const size_t per = size_t(ctx) - (bos >= 0 ? 1 : 0);
  size_t windows = ids.size() / per;
  size_t window_text = per;
  if (windows == 0) {
    windows = 1;
    window_text = ids.size();
  }
  const size_t window_len = window_text + (bos >= 0 ? 1 : 0);
  const size_t unused = ids.size() - windows * window_text;
  // Position t predicts token t+1; the last position has nothing to predict.
  const size_t first = o.all_positions ? 0 : window_len / 2;
  if (window_len < 2 || first >= window_len - 1)
    return Fail(o.text + ": " + std::to_string(ids.size()) +
                " tokens are too few to score; need at least " +
                std::to_string(o.all_positions ? 2 : 3) + " window tokens");

  std::vector<double> kld, nll_ref, nll_test;
  size_t agree = 0;
  size_t cols = 0;
  std::vector<double> lp, lq;
  std::vector<int32_t> window;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t w = 0; w < windows; ++w) {
    window.clear();
    if (bos >= 0)
      window.push_back(bos);
    window.insert(window.end(), ids.begin() + w * per,
                  ids.begin() + w * per + window_text);
    const float *logits[2] = {nullptr, nullptr};
    size_t rows[2] = {0, 0}, ncols[2] = {0, 0};
    int k = 0;
    for (Side *s : {&ref, &test}) {
      s->session.Reset();
      st = s->session.AppendTokens(window);
      if (!st.ok())
        return Fail(s->path + ": window " + std::to_string(w) + ": " +
                    st.message());
      logits[k] =
          gemmac_session_prompt_logits(s->session.get(), &rows[k], &ncols[k]);
      if (logits[k] == nullptr || rows[k] != window.size())
        return Fail(s->path + ": window " + std::to_string(w) + ": expected " +
                    std::to_string(window.size()) +
                    " rows of prompt logits, got " + std::to_string(rows[k]));
      ++k;
    }
    if (ncols[0] != ncols[1])
      return Fail("the modules score different vocabularies: " + o.ref +
                  " returns " + std::to_string(ncols[0]) +
                  " logits per position, " + o.test + " returns " +
                  std::to_string(ncols[1]));
    cols = ncols[0];
    for (size_t t = first; t + 1 < window.size(); ++t) {
      const float *p = logits[0] + t * cols, *q = logits[1] + t * cols;
      for (int side = 0; side < 2; ++side) {
        const float *x = side ? q : p;
        size_t bad = FirstNonFinite(x, cols);
        if (bad != cols)
          return Fail((side ? o.test : o.ref) + ": window " +
                      std::to_string(w) + " position " + std::to_string(t) +
                      ": logit " + std::to_string(bad) + " is not finite (" +
                      Num(x[bad]) + ")");
      }
      LogSoftmax(p, cols, &lp);
      LogSoftmax(q, cols, &lq);
      double kl = 0;
      for (size_t v = 0; v < cols; ++v)
        kl += std::exp(lp[v]) * (lp[v] - lq[v]);
      kld.push_back(kl);
      int32_t next = window[t + 1];
      if (next < 0 || size_t(next) >= cols)
        return Fail(o.text + ": token " + std::to_string(next) +
                    " has no logit (the module scores " + std::to_string(cols) +
                    " tokens)");
      nll_ref.push_back(-lp[next]);
      nll_test.push_back(-lq[next]);
      agree += ArgMax(p, cols) == ArgMax(q, cols);
    }
    if (!o.json && isatty(fileno(stderr)))
      std::fprintf(stderr, "\rgemma-kld: window %zu/%zu", w + 1, windows);
  }
  if (!o.json && isatty(fileno(stderr)))
    std::fputs("\n", stderr);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();

  const size_t n = kld.size();
  auto mean = [](const std::vector<double> &v) {
    double s = 0;
    for (double x : v)
      s += x;
    return s / double(v.size());
  };
  double kl_mean = mean(kld);
  double var = 0;
  for (double x : kld)
    var += (x - kl_mean) * (x - kl_mean);
  double kl_stderr = n > 1 ? std::sqrt(var / double(n - 1) / double(n)) : 0.0;
  double kl_median = Percentile(kld, 50), kl_p99 = Percentile(kld, 99);
  double kl_max = *std::max_element(kld.begin(), kld.end());
  double top1 = 100.0 * double(agree) / double(n);
  double nll_r = mean(nll_ref), nll_t = mean(nll_test);
  const char *scoring = o.all_positions ? "all" : "second_half";

  if (o.json) {
    std::string j = "{";
    j += "\"ref\": " + JsonString(o.ref);
    j += ", \"test\": " + JsonString(o.test);
    j += ", \"text\": " + JsonString(o.text);
    j += ", \"text_tokens\": " + std::to_string(ids.size());
    j += ", \"ctx\": " + std::to_string(window_len);
    j += ", \"windows\": " + std::to_string(windows);
    j += ", \"unused_tail_tokens\": " + std::to_string(unused);
    j += ", \"scoring\": \"" + std::string(scoring) + "\"";
    j += ", \"scored_positions\": " + std::to_string(n);
    j += ", \"vocab\": " + std::to_string(cols);
    j += ", \"kld_mean\": " + Num(kl_mean);
    j += ", \"kld_mean_stderr\": " + Num(kl_stderr);
    j += ", \"kld_median\": " + Num(kl_median);
    j += ", \"kld_p99\": " + Num(kl_p99);
    j += ", \"kld_max\": " + Num(kl_max);
    j += ", \"top1_agreement_pct\": " + Num(top1);
    j += ", \"nll_ref\": " + Num(nll_r);
    j += ", \"nll_test\": " + Num(nll_t);
    j += ", \"ppl_ref\": " + Num(std::exp(nll_r));
    j += ", \"ppl_test\": " + Num(std::exp(nll_t));
    j += ", \"seconds\": " + Num(seconds);
    j += "}\n";
    std::fputs(j.c_str(), stdout);
    return 0;
  }
  std::printf("reference: %s\ntest:      %s\n", o.ref.c_str(), o.test.c_str());
  std::printf("text:      %s: %zu tokens, %zu window%s of %zu (BOS + %zu)",
              o.text.c_str(), ids.size(), windows, windows == 1 ? "" : "s",
              window_len, window_text);
  if (unused)
    std::printf("; the last %zu tokens, less than a window, are not used",
                unused);
  std::printf("\nscored:    %zu position%s: %s\n", n, n == 1 ? "" : "s",
              o.all_positions ? "every position of each window"
                              : "the second half of each window");
  std::printf("\n%-28s %14s\n", "metric", "value");
  std::printf("%-28s %14.6g +/- %.2g\n", "KL divergence mean (nats)", kl_mean,
              kl_stderr);
  std::printf("%-28s %14.6g\n", "KL divergence median", kl_median);
  std::printf("%-28s %14.6g\n", "KL divergence p99", kl_p99);
  std::printf("%-28s %14.6g\n", "KL divergence max", kl_max);
  std::printf("%-28s %13.2f%%\n", "top-1 agreement", top1);
  std::printf("%-28s %14.4f\n", "perplexity REF", std::exp(nll_r));
  std::printf("%-28s %14.4f\n", "perplexity TEST", std::exp(nll_t));
  std::printf("%-28s %14.4f\n", "perplexity ratio TEST/REF",
              std::exp(nll_t - nll_r));
  std::printf("%-28s %14zu\n", "scored tokens", n);
  std::printf("\n%.1f s\n", seconds);
  return 0;
}
