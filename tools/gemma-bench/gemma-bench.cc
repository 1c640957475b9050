// gemma-bench: how fast a compiled module runs on this machine.
//
//   gemma-bench MODEL.gmc [-p 512] [-n 128] [-t 2] [-r 5] [--json]
//
// Per repetition: a fresh session, a prefill of a synthetic -p token prompt
// (BOS, then ids drawn deterministically from the tokenizer's vocabulary with
// the special ids left out), then -n decode steps. Decoding is greedy with
// the stop ids masked out: each step feeds the argmax of the previous logits
// (over the ids that are not special) back with gemmac_session_append_tokens
// (one token, which runs the decode function), so every repetition does the
// same amount of work however the random model behaves; a plain generate
// could stop early on an end-of-turn token. Reports, as median and min..max
// over the repetitions:
//   pp    prompt tokens per second of the prefill,
//   tg    generated tokens per second (decode steps, argmax included),
//   TTFT  from the start of the prefill to the first token chosen,
//   load  gemmac_module_load (mapping and verifying; loaded -r times),
//   RSS   the process's peak resident set (getrusage) after each repetition.
// Then a built-in memory-bandwidth probe with the same thread count, and the
// decode roofline: bytes a decode step must read / measured bandwidth; tg is
// printed as a fraction of it, and so is each repetition's tg against short
// probes run just before and after it in a spawned process (the
// "alongside" figure; docs/benchmarks.md explains each number).
//
// Built only on the public runtime API (gemmac/runtime.h), plus the CPU
// plugin linked statically as in gemma-run. Errors are a message on stderr
// and exit status 1; bad usage exits with status 2.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "bandwidth_probe.h"
#include "cli.h"
#include "gemmac/runtime.h"

namespace {

using gemmac::tools::JsonString;
using gemmac::tools::ParseInt;

using Clock = std::chrono::steady_clock;
using gemmac::bench::ProbeResult;

const char kUsage[] =
    "usage: gemma-bench MODEL.gmc [options]\n"
    "  -p N             prompt tokens per repetition (default 512)\n"
    "  -n N             decode steps per repetition (default 128)\n"
    "  -t N             threads, for the backend and the bandwidth probe\n"
    "                   (default: the hardware's thread count)\n"
    "  -r N             repetitions (default 5)\n"
    "  --warmup N       untimed short runs first (default 1): they fault the\n"
    "                   mapped weights in, so the first repetition does not\n"
    "                   pay for it\n"
    "  --json           print one JSON object instead of the table\n"
    "  --plugin PATH    run on this backend plugin library\n"
    "  --probe-mib N    bandwidth probe buffer in MiB (default max(1 GiB,\n"
    "                   4 x the last-level cache), at most RAM/4)\n"
    "  --probe-passes N timed passes of the probe (default 10; the best one\n"
    "                   is the roofline's bandwidth)\n"
    "  --alongside-passes N  probe passes right before the first repetition\n"
    "                   and right after each one (default 2; 0: none), in a\n"
    "                   spawned process; each repetition's tg is also\n"
    "                   compared with the better of its two neighbouring\n"
    "                   probes, which follows a shared machine's swings\n";

struct Options {
  std::string model, plugin;
  int64_t prompt = 512, gen = 128, threads = 0, reps = 5, warmup = 1;
  int64_t probe_mib = 0, probe_passes = 10, alongside_passes = 2;
  bool json = false;
};

int Usage(const std::string &msg) {
  std::fprintf(stderr, "gemma-bench: %s\n", msg.c_str());
  return 2;
}

int Fail(const std::string &msg) {
  std::fprintf(stderr, "gemma-bench: %s\n", msg.c_str());
  return 1;
}

// Consumes a status; returns its message prefixed with `what`, or "" when
// it is a success.
std::string Error(gemmac_status *st, const std::string &what) {
  const std::string m = gemmac::tools::TakeStatus(st);
  return m.empty() ? m : what + ": " + m;
}

// Returns an error message, or "" on success.
std::string ParseArgs(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--plugin") {
      if (i + 1 >= argc)
        return "--plugin needs a value";
      o->plugin = argv[++i];
    } else if (a == "-p" || a == "-n" || a == "-t" || a == "-r" ||
               a == "--warmup" || a == "--probe-mib" || a == "--probe-passes" ||
               a == "--alongside-passes") {
      // -t 0, --warmup 0 and --alongside-passes 0 are meaningful; the
      // others need at least 1.
      long long lo = (a == "-t" || a == "--warmup" || a == "--probe-mib" ||
                      a == "--alongside-passes")
                         ? 0
                         : 1;
      int64_t *dst = a == "-p"               ? &o->prompt
                     : a == "-n"             ? &o->gen
                     : a == "-t"             ? &o->threads
                     : a == "-r"             ? &o->reps
                     : a == "--warmup"       ? &o->warmup
                     : a == "--probe-mib"    ? &o->probe_mib
                     : a == "--probe-passes" ? &o->probe_passes
                                             : &o->alongside_passes;
      if (i + 1 >= argc || !ParseInt(argv[i + 1], lo, 1 << 24, dst))
        return a + " needs an integer >= " + std::to_string(lo) + ", got " +
               (i + 1 < argc ? "'" + std::string(argv[i + 1]) + "'"
                             : std::string("nothing"));
      ++i;
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option " + a + "\n" + kUsage;
    } else if (o->model.empty()) {
      o->model = a;
    } else {
      return "unexpected argument " + a + " (one module at a time)";
    }
  }
  if (o->model.empty())
    return std::string("no model given\n") + kUsage;
  if (o->threads == 0)
    o->threads = std::max(1u, std::thread::hardware_concurrency());
  return "";
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

uint64_t PeakRssBytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_maxrss) * 1024; // Linux reports KiB
}

struct Spread {
  std::vector<double> values;
  double median = 0, min = 0, max = 0;
};

Spread Summarize(std::vector<double> v) {
  Spread s;
  s.values = v;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

// The ids a synthetic prompt or a masked argmax must avoid: every special id
// the module names, and 0..3 (pad, eos, bos, unk in sentencepiece's Gemma
// numbering) in case the module leaves one unset.
std::set<int32_t> SpecialIds(const gemmac_module_info &info) {
  std::set<int32_t> s = {0, 1, 2, 3};
  for (int32_t id : {info.bos_id, info.eos_id, info.pad_id,
                     info.start_of_turn_id, info.end_of_turn_id})
    if (id >= 0)
      s.insert(id);
  for (size_t i = 0; i < info.num_stop_ids; ++i)
    s.insert(info.stop_ids[i]);
  return s;
}

// BOS, then ids from a fixed-seed generator (splitmix64), so every run and
// every build benchmarks the same prompt.
std::vector<int32_t> SyntheticPrompt(const gemmac_module_info &info,
                                     const std::set<int32_t> &special,
                                     int64_t n) {
  std::vector<int32_t> ids;
  ids.reserve(n);
  if (info.bos_id >= 0)
    ids.push_back(info.bos_id);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  int32_t vocab = std::min(info.tokenizer_vocab_size, info.vocab_size);
  while (int64_t(ids.size()) < n) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    int32_t id = int32_t(z % uint64_t(vocab));
    if (!special.count(id))
      ids.push_back(id);
  }
  return ids;
}

// Greedy choice with the special ids masked out.
int32_t PickToken(const float *logits, size_t cols,
                  const std::set<int32_t> &special) {
  int32_t best = -1;
  float best_v = -INFINITY;
  for (size_t c = 0; c < cols; ++c)
    if (logits[c] > best_v && !special.count(int32_t(c))) {
      best_v = logits[c];
      best = int32_t(c);
    }
  return best;
}

struct Rep {
  double session_s = 0, prefill_s = 0, ttft_s = 0, decode_s = 0;
  uint64_t rss = 0;
  std::string device; // the backend's description (plugin ABI 1.3)
};

struct Context {
  gemmac_runtime *rt = nullptr;
  gemmac_module *m = nullptr;
  gemmac_module_info info{};
  std::set<int32_t> special;
  int32_t threads = 0;
};

gemmac_status *NewSession(const Context &c, int64_t ctx, gemmac_session **s) {
  gemmac_session_options so = {};
  so.struct_size = sizeof(so);
  so.context_length = int32_t(ctx);
  so.num_threads = c.threads;
  so.batch_size = 1;
  return gemmac_session_create(c.rt, c.m, &so, s);
}

// One repetition: fresh session, prefill, `gen` decode steps. Returns an
// error message or "".
std::string RunOnce(const Context &c, const std::vector<int32_t> &prompt,
                    int64_t gen, Rep *rep, gemmac_session_stats *stats) {
  gemmac_session *s = nullptr;
  Clock::time_point t0 = Clock::now();
  std::string err =
      Error(NewSession(c, int64_t(prompt.size()) + gen, &s), "session");
  if (!err.empty())
    return err;
  Clock::time_point t1 = Clock::now();
  rep->session_s = Seconds(t0, t1);
  do {
    err = Error(gemmac_session_append_tokens(s, prompt.data(), prompt.size()),
                "prefill of " + std::to_string(prompt.size()) + " tokens");
    if (!err.empty())
      break;
    Clock::time_point t2 = Clock::now();
    size_t cols = 0;
    const float *logits = gemmac_session_last_logits(s, &cols);
    int32_t tok = logits ? PickToken(logits, cols, c.special) : -1;
    Clock::time_point t3 = Clock::now();
    rep->prefill_s = Seconds(t1, t2);
    rep->ttft_s = Seconds(t1, t3);
    if (tok < 0) {
      err = "prefill gave no logits to pick a token from";
      break;
    }
    for (int64_t i = 0; i < gen && err.empty(); ++i) {
      err = Error(gemmac_session_append_tokens(s, &tok, 1),
                  "decode step " + std::to_string(i));
      logits = gemmac_session_last_logits(s, &cols);
      tok = logits ? PickToken(logits, cols, c.special) : -1;
      if (err.empty() && tok < 0)
        err = "decode step " + std::to_string(i) + " gave no logits";
    }
    rep->decode_s = Seconds(t3, Clock::now());
    if (err.empty() && stats != nullptr) {
      stats->struct_size = sizeof(*stats);
      err = Error(gemmac_session_get_stats(s, stats), "stats");
    }
    const char *device = gemmac_session_backend_description(s);
    rep->device = device ? device : "";
  } while (false);
  gemmac_session_release(s);
  rep->rss = PeakRssBytes();
  return err;
}

// KV bytes a decode step reads, from what the public API shows: the KV
// cache size of sessions of a few context lengths. A session of context 1
// holds one row in every layer (the sum of bytes per position over layers);
// past the rings' capacity only the global (full-context) layers grow, so
// the slope between two long contexts is their bytes per position. Sliding
// layers read min(position + 1, window) rows, global ones position + 1.
struct KvModel {
  double all_per_pos = 0;    // bytes per position, summed over layers
  double global_per_pos = 0; // the part of it in full-context layers
  bool measured = false;     // false: every layer treated as global
  std::string note;
};

std::string MeasureKv(const Context &c, int64_t prefill_max, KvModel *kv) {
  auto kv_bytes = [&](int64_t ctx, uint64_t *out) {
    gemmac_session *s = nullptr;
    std::string e = Error(NewSession(c, ctx, &s),
                          "session of context " + std::to_string(ctx));
    if (e.empty()) {
      gemmac_session_stats st = {};
      st.struct_size = sizeof(st);
      e = Error(gemmac_session_get_stats(s, &st), "stats");
      *out = st.kv_cache_bytes;
    }
    gemmac_session_release(s);
    return e;
  };
  uint64_t one = 0;
  std::string e = kv_bytes(1, &one);
  if (!e.empty())
    return e;
  kv->all_per_pos = double(one);
  kv->global_per_pos = double(one);
  int64_t window = c.info.sliding_window;
  if (window <= 0) {
    kv->measured = true;
    kv->note = "no sliding layers";
    return "";
  }
  // A ring holds window + one chunk; twice that is past every ring.
  int64_t c1 = 2 * (window + std::max<int64_t>(prefill_max, 1)), step = 256;
  if (c.info.max_context > 0 && c1 + step > c.info.max_context) {
    kv->note = "max_context too small to separate ring and global layers; "
               "every layer counted as global (an upper bound)";
    return "";
  }
  uint64_t a = 0, b = 0, mid = 0;
  if (!(e = kv_bytes(c1, &a)).empty() ||
      !(e = kv_bytes(c1 + step, &b)).empty() ||
      !(e = kv_bytes(c1 + step / 2, &mid)).empty())
    return e;
  double slope = (double(b) - double(a)) / double(step);
  // Linear between the two points and no steeper than all layers together,
  // or the rings were not all full yet: keep the upper bound.
  if (b < a || slope > kv->all_per_pos ||
      std::fabs(double(mid) - double(a) - slope * (step / 2)) > 0.5) {
    kv->note = "KV size not linear in the context; every layer counted as "
               "global (an upper bound)";
    return "";
  }
  kv->global_per_pos = slope;
  kv->measured = true;
  return "";
}

// Mean KV bytes read per decode step over positions [first, first + n).
double KvReadPerStep(const KvModel &kv, int64_t window, int64_t first,
                     int64_t n) {
  double local = kv.all_per_pos - kv.global_per_pos, sum = 0;
  for (int64_t p = first; p < first + n; ++p) {
    double rows = double(p + 1);
    sum += kv.global_per_pos * rows +
           local * (window > 0 ? std::min<double>(rows, window) : rows);
  }
  return n > 0 ? sum / double(n) : 0;
}

// The embedding table's bytes. The public info has the shape
// (vocab_size x hidden_size) and the compiler's policy text ("bf16",
// "q4, embed=q8", ...), which names the embedding's scheme; without a
// policy the module's mean bytes per parameter stand in (an approximation:
// norms are f32 whatever the scheme).
uint64_t EmbedBytes(const gemmac_module_info &info, std::string *how) {
  int64_t rows = info.vocab_size, cols = info.hidden_size;
  std::string policy = info.quantization ? info.quantization : "";
  std::string scheme = policy.substr(0, policy.find(','));
  size_t at = policy.find("embed=");
  if (at != std::string::npos) {
    size_t end = policy.find(',', at);
    scheme =
        policy.substr(at + 6, end == std::string::npos ? end : end - at - 6);
  }
  while (!scheme.empty() && scheme.back() == ' ')
    scheme.pop_back();
  int32_t dtype = scheme == "f32"    ? GEMMAC_DTYPE_F32
                  : scheme == "bf16" ? GEMMAC_DTYPE_BF16
                  : scheme == "f16"  ? GEMMAC_DTYPE_F16
                  : scheme == "q8"   ? GEMMAC_DTYPE_Q8C
                  : scheme == "q4"   ? GEMMAC_DTYPE_Q4G32
                  : scheme == "q4z"  ? GEMMAC_DTYPE_Q4G128
                                     : -2;
  int64_t bytes = dtype >= 0 ? gemmac_weight_bytes(dtype, rows, cols) : -1;
  // A quantized scheme whose group does not divide the columns leaves the
  // table in a float dtype, which the policy text does not say: fall back.
  if (bytes > 0 && uint64_t(bytes) < info.weights_bytes) {
    *how = "policy '" + policy + "': embedding " + scheme;
    return uint64_t(bytes);
  }
  double per_param = info.parameter_count
                         ? double(info.weights_bytes) / info.parameter_count
                         : 2.0;
  *how = "approximate: no usable policy text ('" + policy +
         "'), module mean of " + std::to_string(per_param) +
         " bytes per parameter";
  return uint64_t(per_param * double(rows) * double(cols));
}

std::string Num(double v) {
  char b[64];
  if (!std::isfinite(v))
    return "null";
  std::snprintf(b, sizeof(b), "%.12g", v);
  return b;
}

std::string JsonSpread(const Spread &s) {
  std::string o = "{\"median\": " + Num(s.median) + ", \"min\": " + Num(s.min) +
                  ", \"max\": " + Num(s.max) + ", \"values\": [";
  for (size_t i = 0; i < s.values.size(); ++i)
    o += (i ? ", " : "") + Num(s.values[i]);
  return o + "]}";
}

// This program's path, for the probes it spawns.
std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string("/proc/self/exe");
}

std::string CpuName() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      if (c != std::string::npos)
        return line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "unknown";
}

} // namespace

int main(int argc, char **argv) {
  // The probes alongside the runs re-run this program in this mode.
  if (int child = gemmac::bench::ProbeChildMain(argc, argv); child >= 0)
    return child;
  Options o;
  std::string err = ParseArgs(argc, argv, &o);
  if (!err.empty())
    return Usage(err);

  Context c;
  c.threads = int32_t(o.threads);
  const uint64_t probe_bytes = o.probe_mib > 0
                                   ? uint64_t(o.probe_mib) << 20
                                   : gemmac::bench::DefaultProbeBytes();
  const int passes_before = int(o.probe_passes / 2);
  ProbeResult probe_before;

  err = gemmac::tools::OpenRuntime("gemma-bench", o.plugin, c.threads, &c.rt);
  if (!err.empty())
    return Fail("runtime: " + err);

  const uint64_t rss_base = PeakRssBytes();
  int rc = 1;
  do {
    // Module load, -r times: the first handle is kept for the runs.
    std::vector<double> loads;
    for (int64_t i = 0; i < o.reps; ++i) {
      gemmac_module *m = nullptr;
      Clock::time_point t0 = Clock::now();
      err = Error(gemmac_module_load(c.rt, o.model.c_str(), &m), "load");
      loads.push_back(Seconds(t0, Clock::now()));
      if (!err.empty())
        break;
      if (c.m == nullptr)
        c.m = m;
      else
        gemmac_module_release(m);
    }
    if (!err.empty()) {
      Fail(err);
      break;
    }
    c.info.struct_size = sizeof(c.info);
    if (!(err = Error(gemmac_module_get_info(c.m, &c.info), o.model)).empty()) {
      Fail(err);
      break;
    }
    const gemmac_module_info &info = c.info;
    if (info.tokenizer_vocab_size <= 0 || info.vocab_size <= 0) {
      Fail(o.model + ": the module reports no vocabulary");
      break;
    }
    if (info.max_context > 0 && o.prompt + o.gen > info.max_context) {
      Usage(o.model + ": -p " + std::to_string(o.prompt) + " + -n " +
            std::to_string(o.gen) + " needs a context of " +
            std::to_string(o.prompt + o.gen) + " tokens; the model's " +
            "max_context is " + std::to_string(info.max_context));
      rc = 2;
      break;
    }
    // Half the probe's passes now, in a spawned process (its buffer stays
    // out of our peak RSS), half after the runs: on a shared machine the
    // best pass of two moments is a fairer limit than one moment's.
    if (passes_before > 0) {
      probe_before = gemmac::bench::ProbeReadBandwidthSpawned(
          SelfExe(), c.threads, probe_bytes, passes_before);
      if (!probe_before.error.empty())
        std::fprintf(stderr,
                     "gemma-bench: warning: %s; probing after the runs only\n",
                     probe_before.error.c_str());
    } else {
      probe_before.error = "not run";
    }
    c.special = SpecialIds(info);
    std::vector<int32_t> prompt = SyntheticPrompt(info, c.special, o.prompt);

    for (int64_t w = 0; w < o.warmup && err.empty(); ++w) {
      Rep rep;
      std::vector<int32_t> short_prompt(
          prompt.begin(), prompt.begin() + std::min<int64_t>(o.prompt, 16));
      err =
          RunOnce(c, short_prompt, std::min<int64_t>(o.gen, 4), &rep, nullptr);
    }
    // The probes alongside: alongside[r] and alongside[r + 1] bracket
    // repetition r.
    std::vector<ProbeResult> alongside;
    auto probe_now = [&] {
      if (o.alongside_passes > 0 && err.empty())
        alongside.push_back(gemmac::bench::ProbeReadBandwidthSpawned(
            SelfExe(), c.threads, probe_bytes, int(o.alongside_passes)));
      if (!alongside.empty() && !alongside.back().error.empty())
        err = alongside.back().error;
    };
    probe_now();
    std::vector<Rep> reps;
    gemmac_session_stats stats = {};
    for (int64_t r = 0; r < o.reps && err.empty(); ++r) {
      Rep rep;
      err = RunOnce(c, prompt, o.gen, &rep, &stats);
      reps.push_back(rep);
      probe_now();
    }
    if (!err.empty()) {
      Fail(o.model + ": " + err);
      break;
    }

    // After the runs, so neither inflates the peak RSS just measured.
    KvModel kv;
    err = MeasureKv(c, info.prefill_max_tokens, &kv);
    if (!err.empty()) {
      Fail(o.model + ": measuring the KV cache: " + err);
      break;
    }
    // If the child could not run, all the passes are taken here.
    ProbeResult probe_after = gemmac::bench::ProbeReadBandwidth(
        c.threads, probe_bytes,
        int(o.probe_passes) - (probe_before.error.empty() ? passes_before : 0));
    if (!probe_after.error.empty()) {
      Fail(probe_after.error);
      break;
    }
    ProbeResult probe = gemmac::bench::MergeProbes({probe_before, probe_after});

    // Bytes one decode step reads: every weight but the embedding rows the
    // head does not score (the tied head reads rows [0, tokenizer vocab);
    // the lookup's one row is among them, as decoded ids come from the
    // scored columns), plus the KV rows attention visits.
    std::string embed_how;
    uint64_t embed = EmbedBytes(info, &embed_how);
    int64_t head_rows = std::min(info.tokenizer_vocab_size, info.vocab_size);
    double embed_read =
        double(embed) * double(head_rows) / double(info.vocab_size);
    double weight_read =
        double(info.weights_bytes) - double(embed) + embed_read;
    double kv_read = KvReadPerStep(kv, info.sliding_window, o.prompt, o.gen);
    double bytes_per_token = weight_read + kv_read;
    double limit_tps = probe.best_gbps * 1e9 / bytes_per_token;
    // Matrix FLOPs per token (2 per weight read; attention left out).
    double flops_per_token = 2.0 * (double(info.parameter_count) -
                                    double(info.vocab_size) * info.hidden_size +
                                    double(head_rows) * info.hidden_size);

    std::vector<double> pp, tg, ttft, sess, rss;
    for (const Rep &r : reps) {
      pp.push_back(double(o.prompt) / r.prefill_s);
      tg.push_back(double(o.gen) / r.decode_s);
      ttft.push_back(r.ttft_s);
      sess.push_back(r.session_s);
      rss.push_back(double(r.rss));
    }
    Spread s_pp = Summarize(pp), s_tg = Summarize(tg), s_ttft = Summarize(ttft),
           s_load = Summarize(loads), s_sess = Summarize(sess),
           s_rss = Summarize(rss);
    double fraction = s_tg.median * bytes_per_token / (probe.best_gbps * 1e9);
    // Each repetition's tg against the better of its neighbouring probes.
    std::vector<double> near_fraction, alongside_gbps;
    for (const ProbeResult &p : alongside)
      alongside_gbps.push_back(p.best_gbps);
    for (size_t r = 0; r + 1 < alongside.size() && r < tg.size(); ++r)
      near_fraction.push_back(
          tg[r] * bytes_per_token /
          (std::max(alongside_gbps[r], alongside_gbps[r + 1]) * 1e9));
    const Spread s_near =
        near_fraction.empty() ? Spread{} : Summarize(near_fraction);
    uint64_t budget =
        info.weights_bytes + stats.kv_cache_bytes + (uint64_t(64) << 20);
    const char *backend = gemmac_runtime_plugin_count(c.rt) > 0
                              ? gemmac_runtime_plugin_name(c.rt, 0)
                              : "?";
    std::string quant = info.quantization ? info.quantization : "";
    const std::string device = reps.empty() ? "" : reps.front().device;
    const char *decode_mode =
        "greedy, special ids masked, one append_tokens per step";

    if (o.json) {
      std::string j = "{";
      j += "\"model\": " + JsonString(o.model);
      j += ", \"backend\": " + JsonString(backend);
      j += ", \"cpu\": " + JsonString(CpuName());
      j += ", \"device\": " + JsonString(device);
      j += ", \"quantization\": " + JsonString(quant);
      j += ", \"threads\": " + std::to_string(c.threads);
      j += ", \"prompt_tokens\": " + std::to_string(o.prompt);
      j += ", \"gen_tokens\": " + std::to_string(o.gen);
      j += ", \"repetitions\": " + std::to_string(o.reps);
      j += ", \"warmup\": " + std::to_string(o.warmup);
      j += ", \"decode_mode\": " + JsonString(decode_mode);
      j += ", \"weights_bytes\": " + std::to_string(info.weights_bytes);
      j += ", \"parameter_count\": " + std::to_string(info.parameter_count);
      j += ", \"kv_cache_bytes\": " + std::to_string(stats.kv_cache_bytes);
      j += ", \"arena_bytes\": " + std::to_string(stats.arena_bytes);
      j += ", \"pp_tps\": " + JsonSpread(s_pp);
      j += ", \"tg_tps\": " + JsonSpread(s_tg);
      j += ", \"ttft_s\": " + JsonSpread(s_ttft);
      j += ", \"load_s\": " + JsonSpread(s_load);
      j += ", \"session_create_s\": " + JsonSpread(s_sess);
      j += ", \"peak_rss_bytes\": " + JsonSpread(s_rss);
      j += ", \"rss_before_load_bytes\": " + std::to_string(rss_base);
      j += ", \"rss_budget_bytes\": " + std::to_string(budget);
      j += ", \"pp_gflops\": " + Num(s_pp.median * flops_per_token / 1e9);
      j += ", \"tg_gflops\": " + Num(s_tg.median * flops_per_token / 1e9);
      j += ", \"probe\": {\"threads\": " + std::to_string(probe.threads) +
           ", \"buffer_bytes\": " + std::to_string(probe.buffer_bytes) +
           ", \"passes\": " + std::to_string(probe.pass_gbps.size()) +
           ", \"best_gbps\": " + Num(probe.best_gbps) +
           ", \"median_gbps\": " + Num(probe.median_gbps) +
           ", \"before_runs_best_gbps\": " +
           Num(probe_before.error.empty() ? probe_before.best_gbps : NAN) +
           ", \"after_runs_best_gbps\": " + Num(probe_after.best_gbps) + "}";
      j += ", \"roofline\": {\"weight_bytes_per_token\": " + Num(weight_read) +
           ", \"embed_bytes\": " + std::to_string(embed) +
           ", \"embed_estimate\": " + JsonString(embed_how) +
           ", \"head_rows\": " + std::to_string(head_rows) +
           ", \"kv_bytes_per_token\": " + Num(kv_read) + ", \"kv_estimate\": " +
           JsonString(kv.measured ? "measured" : "upper bound: " + kv.note) +
           ", \"mean_context\": " + Num(double(o.prompt) + (o.gen + 1) / 2.0) +
           ", \"bytes_per_token\": " + Num(bytes_per_token) +
           ", \"tg_limit_tps\": " + Num(limit_tps) +
           ", \"tg_fraction\": " + Num(fraction) + "}";
      j += ", \"alongside\": {\"passes\": " +
           std::to_string(o.alongside_passes) + ", \"probe_best_gbps\": [";
      for (size_t i = 0; i < alongside_gbps.size(); ++i)
        j += (i ? ", " : "") + Num(alongside_gbps[i]);
      j += "], \"tg_fraction\": " +
           (near_fraction.empty() ? std::string("null") : JsonSpread(s_near)) +
           "}";
      j += "}\n";
      std::fputs(j.c_str(), stdout);
    } else {
      auto row = [](const char *name, const Spread &s, double scale,
                    const char *fmt) {
        char a[32], b[32], cc[32];
        std::snprintf(a, sizeof(a), fmt, s.median * scale);
        std::snprintf(b, sizeof(b), fmt, s.min * scale);
        std::snprintf(cc, sizeof(cc), fmt, s.max * scale);
        std::printf("  %-22s %12s   %10s .. %-10s\n", name, a, b, cc);
      };
      std::printf("gemma-bench %s\n", o.model.c_str());
      std::printf("  %s, %.3f GB of weights, %s backend, %d threads, CPU %s\n",
                  quant.empty() ? "(no policy)" : quant.c_str(),
                  info.weights_bytes / 1e9, backend, c.threads,
                  CpuName().c_str());
      if (!device.empty())
        std::printf("  device: %s\n", device.c_str());
      std::printf("  prompt %lld tokens, %lld decode steps (%s), "
                  "%lld repetitions after %lld warm-up\n\n",
                  (long long)o.prompt, (long long)o.gen, decode_mode,
                  (long long)o.reps, (long long)o.warmup);
      std::printf("  %-22s %12s   %s\n", "", "median", "min .. max");
      row("pp (prompt tok/s)", s_pp, 1, "%.2f");
      row("tg (generated tok/s)", s_tg, 1, "%.2f");
      row("time to first token s", s_ttft, 1, "%.3f");
      row("module load ms", s_load, 1e3, "%.2f");
      row("session create ms", s_sess, 1e3, "%.2f");
      row("peak RSS MiB", s_rss, 1.0 / 1048576, "%.1f");
      std::printf("\n  RSS budget (weights + KV + 64 MiB): %.1f MiB; "
                  "before load %.1f MiB\n",
                  budget / 1048576.0, rss_base / 1048576.0);
      std::printf("  matrix GFLOP/s: pp %.2f, tg %.2f\n",
                  s_pp.median * flops_per_token / 1e9,
                  s_tg.median * flops_per_token / 1e9);
      std::printf("  memory bandwidth (read probe, %d threads, %.0f MiB, %zu "
                  "passes): best %.2f GB/s, median %.2f GB/s\n",
                  probe.threads, probe.buffer_bytes / 1048576.0,
                  probe.pass_gbps.size(), probe.best_gbps, probe.median_gbps);
      if (probe_before.error.empty() && passes_before > 0)
        std::printf("    best pass before the runs %.2f GB/s, after %.2f "
                    "GB/s\n",
                    probe_before.best_gbps, probe_after.best_gbps);
      std::printf("  bytes per decode step: %.1f MB weights + %.2f MB KV "
                  "(mean context %.1f%s) = %.1f MB\n",
                  weight_read / 1e6, kv_read / 1e6,
                  double(o.prompt) + (o.gen + 1) / 2.0,
                  kv.measured ? "" : ", upper bound", bytes_per_token / 1e6);
      std::printf("    embedding %.1f MB, %lld of %d rows read (%s)\n",
                  embed / 1e6, (long long)head_rows, info.vocab_size,
                  embed_how.c_str());
      std::printf("  roofline: %.2f tok/s; tg median %.2f tok/s = %.1f%% of "
                  "it\n",
                  limit_tps, s_tg.median, 100.0 * fraction);
      if (!near_fraction.empty())
        std::printf(
            "  alongside (each repetition against the better of the "
            "probes just before and\n    after it, %lld passes each, "
            "best %.1f .. %.1f GB/s): tg median %.1f%% (%.1f .. "
            "%.1f%%)\n",
            (long long)o.alongside_passes,
            *std::min_element(alongside_gbps.begin(), alongside_gbps.end()),
            *std::max_element(alongside_gbps.begin(), alongside_gbps.end()),
            100.0 * s_near.median, 100.0 * s_near.min, 100.0 * s_near.max);
    }
    rc = 0;
  } while (false);
  gemmac_module_release(c.m);
  gemmac_runtime_release(c.rt);
  return rc;
}
