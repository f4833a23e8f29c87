// Progress of a long phase (the reference log-prob pass, an evaluation, reading a large JSONL):
// done/total, percentage, rate and ETA. On a terminal the line is redrawn in place (\r) at most
// 5 times a second and cleared when the phase ends, so the phase's own summary line replaces it;
// in a log file or a pipe a full line is written every 5 seconds, so logs stay readable and a
// phase shorter than that prints nothing. Quiet prints nothing at all. Host code only.
//
//   Progress p("reference log-probs", n_pairs, "pairs", quiet);
//   for (...) { ...; p.update(done); }
//   p.finish();
#pragma once
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

// "42s", "3m07s", "1h05m"
inline std::string format_duration(double seconds) {
    char buf[64];
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

struct Progress {
    using Clock = double (*)();  // seconds; a fake one in tests
    static double steady_seconds() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }

    std::string what, unit;
    double total;       // 0 = unknown: no percentage, no ETA
    bool quiet, terminal;
    FILE* out;
    Clock clock;
    double start, last_shown, interval;
    bool drawn = false;  // a terminal line is on screen

    // terminal: 1 or 0 to force, -1 = whether `out` is a terminal
    Progress(const std::string& what_, double total_, const std::string& unit_, bool quiet_, FILE* out_ = stdout,
             Clock clock_ = steady_seconds, int terminal_ = -1)
        : what(what_), unit(unit_), total(total_), quiet(quiet_),
          terminal(terminal_ >= 0 ? terminal_ == 1 : isatty(fileno(out_)) == 1), out(out_), clock(clock_) {
        start = last_shown = clock();
        interval = terminal ? 0.2 : 5.0;
    }

    // `done` units finished so far; `extra` is appended to the line (e.g. "12000 lines")
    void update(double done, const std::string& extra = "") {
        if (quiet) return;
        double now = clock();
        if (now - last_shown < interval) return;
        last_shown = now;
        std::string line = text(done, now - start);
        if (!extra.empty()) line += " | " + extra;
        if (terminal) fprintf(out, "\r%s\033[K", line.c_str());
        else fprintf(out, "%s\n", line.c_str());
        fflush(out);
        drawn = terminal;
    }

    // the phase is over: a terminal line is cleared (the caller prints its own summary)
    void finish() {
        if (drawn) { fprintf(out, "\r\033[K"); fflush(out); }
        drawn = false;
    }
    ~Progress() { finish(); }

    std::string text(double done, double elapsed) const {
        std::string s = what + ": " + number(done);
        if (total > 0) {
            char pct[32];
            snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * done / total);
            s += "/" + number(total) + " " + unit + pct;
        } else {
            s += " " + unit;
        }
        double rate = elapsed > 0 ? done / elapsed : 0;
        s += " | " + number(rate) + " " + unit + "/s";
        if (total > 0 && rate > 0) s += " | eta " + format_duration((total - done) / rate);
        return s;
    }
    // whole numbers as such, small fractional ones with one decimal
    static std::string number(double x) {
        char buf[64];
        if (x >= 100 || x == (double)(long long)x) snprintf(buf, sizeof buf, "%.0f", x);
        else snprintf(buf, sizeof buf, "%.1f", x);
        return buf;
    }
};
