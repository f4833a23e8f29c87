// Tests of common/progress.h with a fake clock: in a log (not a terminal) the output is whole
// lines, one per 5 s interval, with the right counts, rate and ETA; on a terminal it is one line
// redrawn in place at most 5 times a second and cleared at the end; --quiet prints nothing.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/progress.h"
#include "dev/test_util.h"

static double g_now = 1000.0;  // the fake clock, in seconds
static double fake_clock() { return g_now; }

// Runs a phase of `n` units, one per `step_s` seconds, into a memory stream; returns the output.
static std::string run_phase(double total, long n, double step_s, bool quiet, int terminal) {
    char* buf = nullptr;
    size_t len = 0;
    FILE* out = open_memstream(&buf, &len);
    {
        Progress p("ref", total, "pairs", quiet, out, fake_clock, terminal);
        for (long i = 1; i <= n; i++) {
            g_now += step_s;
            p.update((double)i);
        }
        p.finish();
    }
    fclose(out);
    std::string s(buf, len);
    free(buf);
    return s;
}

static int count(const std::string& s, char c) {
    int n = 0;
    for (char x : s) n += x == c;
    return n;
}

int main() {
    // steps of 1/128 s: exact in binary, so the 5 s marks fall on whole steps
    const double tick = 1.0 / 128;
    // a log: 1280 pairs at 128 pairs/s = 10 s -> lines at 5 s and 10 s, nothing at the end
    std::string log = run_phase(1280, 1280, tick, false, 0);
    test_report(count(log, '\n') == 2 && count(log, '\r') == 0 && !log.empty() && log.back() == '\n',
                "log_output_is_whole_lines_every_5s", "got '%s'", log.c_str());
    std::string first = log.substr(0, log.find('\n'));
    // after 5 s (640 done at 128 pairs/s): 640 left -> eta 5 s
    test_report(first == "ref: 640/1280 pairs (50%) | 128 pairs/s | eta 5s", "log_line_counts_rate_eta",
                "first line '%s'", first.c_str());

    // a phase shorter than the interval leaves the log untouched
    std::string brief = run_phase(1280, 1280, tick / 4, false, 0);  // 2.5 s
    test_report(brief.empty(), "log_short_phase_prints_nothing", "got '%s'", brief.c_str());

    // a terminal: 10 s -> at most 10 / 0.2 = 50 redraws, no newline, cleared at the end
    std::string tty = run_phase(1280, 1280, tick, false, 1);
    int redraws = count(tty, '\r') - 1;  // the last \r clears
    const std::string clear = "\r\033[K";
    test_report(count(tty, '\n') == 0 && redraws >= 45 && redraws <= 50 &&
                    tty.compare(tty.size() - clear.size(), clear.size(), clear) == 0,
                "terminal_redraws_in_place_rate_limited", "%d redraws, %d newlines", redraws, count(tty, '\n'));

    // quiet: nothing, on a terminal or not
    test_report(run_phase(1280, 1280, tick, true, 0).empty() && run_phase(1280, 1280, tick, true, 1).empty(),
                "quiet_prints_nothing");

    // an unknown total: count and rate, no percentage, no ETA
    std::string open = run_phase(0, 700, tick, false, 0);
    std::string open_first = open.substr(0, open.find('\n'));
    test_report(open_first == "ref: 640 pairs | 128 pairs/s", "unknown_total_has_no_eta", "first line '%s'",
                open_first.c_str());

    // durations as the step lines write them
    test_report(format_duration(42) == "42s" && format_duration(187) == "3m07s" && format_duration(3900) == "1h05m",
                "format_duration", "%s %s %s", format_duration(42).c_str(), format_duration(187).c_str(),
                format_duration(3900).c_str());
    return test_exit();
}
