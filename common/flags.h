// The command-line flag parser of every tool (the trainer, score, sample, prepare_dpo, tokenize):
// flags are read in order and each value is typed and bounded before it is stored. Integers are
// read as integers and range-checked before they are narrowed (so 4294967296 is an error, never 0);
// numbers must be finite, in range, and finite as a float when stored in one; NaN is never
// accepted; lists are read strictly (every item a valid value). Each error names the flag, the
// value and what is accepted, e.g. "--log-every 0: give a whole number in [1, 100000000]".
//
//   FlagParser flags(argc, argv, 1);
//   while (flags.next()) {
//       if (flags.is("--steps")) flags.integer(&steps, 0, 100000000);
//       else if (flags.is("--lr")) flags.number(&lr, NumberRange::at_least(0));
//       else flags.unknown();
//       if (!flags.ok()) { report flags.error(); }
//   }
#pragma once
#include <cctype>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

inline std::string format_number(double x) {
    char b[32];
    snprintf(b, sizeof b, "%g", x);
    return b;
}

// An interval of accepted numbers; each end closed or open.
struct NumberRange {
    double lo, hi;
    bool lo_open = false, hi_open = false;

    static NumberRange closed(double lo, double hi) { return {lo, hi, false, false}; }
    static NumberRange at_least(double lo) { return {lo, DBL_MAX, false, false}; }
    static NumberRange above(double lo) { return {lo, DBL_MAX, true, false}; }
    bool contains(double x) const {
        return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
    }
    // "in [0, 0.5)", "> 0", ">= 0"
    std::string describe() const {
        if (hi == DBL_MAX) return (lo_open ? "> " : ">= ") + format_number(lo);
        return std::string("in ") + (lo_open ? "(" : "[") + format_number(lo) + ", " + format_number(hi) +
               (hi_open ? ")" : "]");
    }
};

// Strict parsers of one value; false if `s` is not entirely one valid value of the type. Range
// checks are the caller's (FlagParser's).
inline bool parse_int64(const std::string& s, int64_t* out) {
    if (s.empty() || !(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && s.size() > 1 &&
                                                        isdigit((unsigned char)s[1]))))
        return false;
    errno = 0;
    char* end = nullptr;
    long long v = strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE) return false;
    *out = v;
    return true;
}

inline bool parse_finite_double(const std::string& s, double* out) {
    if (s.empty() || isspace((unsigned char)s[0])) return false;
    char* end = nullptr;
    *out = strtod(s.c_str(), &end);
    return end != s.c_str() && *end == '\0' && std::isfinite(*out);
}

class FlagParser {
public:
    // Reads argv[first..argc); `context` prefixes every error ("score: ...").
    FlagParser(int argc, char** argv, int first, std::string context = "")
        : argc_(argc), argv_(argv), i_(first), context_(context.empty() ? "" : context + ": ") {}

    // Moves to the next flag; false at the end or after an error.
    bool next() {
        if (!ok() || i_ >= argc_) return false;
        flag_ = argv_[i_++];
        return true;
    }
    const std::string& flag() const { return flag_; }
    bool is(const char* name) const { return flag_ == name; }
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    // Whether the next argument is a value rather than another flag (for flags whose value is optional).
    bool value_follows() const { return i_ < argc_ && argv_[i_][0] != '-'; }

    bool unknown() { return fail("unknown flag '" + flag_ + "' (see --help)"); }

    bool text(std::string* out) {
        if (i_ >= argc_) return fail("flag " + flag_ + " needs a value (see --help)");
        *out = argv_[i_++];
        return true;
    }

    // A whole number in [lo, hi], stored in any integer type that holds the range.
    // `why` (optional) is added to the error: the reason for the bounds.
    template <typename Int>
    bool integer(Int* out, int64_t lo, int64_t hi, const char* why = nullptr) {
        static_assert(std::is_integral<Int>::value, "integer() stores into an integer type");
        std::string v;
        int64_t x;
        if (!text(&v)) return false;
        if (!parse_int64(v, &x) || x < lo || x > hi)
            return bad(v, integer_range(lo, hi) + (why ? std::string(" (") + why + ")" : ""));
        if (x < (int64_t)std::numeric_limits<Int>::min() ||
            (x > 0 && (uint64_t)x > (uint64_t)std::numeric_limits<Int>::max()))
            return fail("flag " + flag_ + ": '" + v + "' does not fit its type");  // a caller's range bug
        *out = (Int)x;
        return true;
    }

    // A 64-bit seed: a whole number in [0, 2^64 - 1] (a minus sign is an error, never a wrap).
    bool seed(uint64_t* out) {
        std::string v;
        if (!text(&v)) return false;
        bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        char* end = nullptr;
        unsigned long long x = digits ? strtoull(v.c_str(), &end, 10) : 0;
        if (!digits || errno == ERANGE) return bad(v, "give a whole number in [0, 18446744073709551615]");
        *out = (uint64_t)x;
        return true;
    }

    // A finite number in `range`; a float must be finite as a float (1e39 is not) and its rounded
    // value in range too (--beta 1e-50 is 0 as a float, so not > 0).
    bool number(double* out, NumberRange range) { return number_as(out, range, false); }
    bool number(float* out, NumberRange range) {
        double d;
        if (!number_as(&d, range, true)) return false;
        *out = (float)d;
        return true;
    }

    bool on_off(bool* out) {
        std::string v;
        if (!text(&v)) return false;
        if (v != "on" && v != "off") return fail("flag " + flag_ + " takes on or off, not '" + v + "'");
        *out = v == "on";
        return true;
    }

    // One of `names`; *out = its index.
    bool choice(int* out, const std::vector<std::string>& names) {
        std::string v, all;
        if (!text(&v)) return false;
        for (size_t k = 0; k < names.size(); k++) {
            if (v == names[k]) { *out = (int)k; return true; }
            all += (k ? (k + 1 == names.size() ? " or " : ", ") : "") + names[k];
        }
        return fail("flag " + flag_ + " takes " + all + ", not '" + v + "'");
    }

    // Whole numbers in [lo, hi] separated by whitespace ("1 2 3"); at least one.
    bool integer_list(std::vector<int>* out, int64_t lo, int64_t hi) {
        std::string v;
        if (!text(&v)) return false;
        out->clear();
        for (const std::string& item : split(v, " \t\n")) {
            int64_t x;
            if (!parse_int64(item, &x) || x < lo || x > hi || x < INT32_MIN || x > INT32_MAX)
                return bad(v, "'" + item + "' is not a whole number in " + bracket(lo, hi) +
                                  "; give whole numbers separated by spaces");
            out->push_back((int)x);
        }
        if (out->empty()) return bad(v, "give at least one whole number, e.g. \"1 2 3\"");
        return true;
    }

    // Finite numbers in `range` separated by commas ("1,0.5"); each finite as a float.
    bool number_list(std::vector<float>* out, NumberRange range) {
        std::string v;
        if (!text(&v)) return false;
        out->clear();
        for (const std::string& item : split(v, ",", true)) {
            double d;
            if (!parse_finite_double(item, &d) || std::fabs(d) > FLT_MAX || !range.contains((float)d))
                return bad(v, "'" + item + "' is not a finite number " + range.describe() +
                                  (range.hi > FLT_MAX ? " that fits a float" : "") + "; give numbers separated by commas");
            out->push_back((float)d);
        }
        return true;
    }

    // Records an error about the current flag (for checks across flags, after parsing).
    bool fail(const std::string& message) {
        if (error_.empty()) error_ = context_ + message;
        return false;
    }

private:
    int argc_;
    char** argv_;
    int i_;
    std::string context_, flag_, error_;

    // "--max-len 3: give a whole number in [4, 1000000000]" (the value quoted if empty or spaced)
    bool bad(const std::string& value, const std::string& accepted) {
        bool quote = value.empty() || value.find_first_of(" \t\n") != std::string::npos;
        return fail(flag_ + " " + (quote ? "'" + value + "'" : value) + ": " + accepted);
    }
    static std::string bracket(int64_t lo, int64_t hi) {
        return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    }
    static std::string integer_range(int64_t lo, int64_t hi) { return "give a whole number in " + bracket(lo, hi); }
    bool number_as(double* out, NumberRange range, bool as_float) {
        std::string v;
        if (!text(&v)) return false;
        bool ok = parse_finite_double(v, out);
        if (ok && as_float) {
            ok = std::fabs(*out) <= FLT_MAX;
            if (ok) *out = (double)(float)*out;
        }
        if (!ok || !range.contains(*out))
            return bad(v, "give a finite number " + range.describe() +
                              (as_float && range.hi > FLT_MAX ? " that fits a float" : ""));
        return true;
    }
    // Splits on any of `seps`; keep_empty: "1,,2" gives an empty item (an error for the caller).
    static std::vector<std::string> split(const std::string& s, const char* seps, bool keep_empty = false) {
        std::vector<std::string> items;
        std::string cur;
        for (size_t k = 0; k <= s.size(); k++) {
            if (k == s.size() || strchr(seps, s[k])) {
                if (!cur.empty() || keep_empty) items.push_back(cur);
                cur.clear();
            } else {
                cur += s[k];
            }
        }
        return items;
    }
};
