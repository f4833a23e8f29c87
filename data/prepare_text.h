// Text-level steps of data/prepare_dpo, kept apart from the tool so tests and fuzz/ can call
// them: UTF-8 validation, turning one JSON line into (prompt, chosen, rejected) text in each input
// format (explicit, implicit HH-RLHF, chat messages), and fitting a tokenised pair into a
// maximum unit length under a truncation policy. data/README.md documents every rule here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "common/json_read.h"

// ---------------------------------------------------------------------------------------------
// UTF-8

// Byte offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or std::string::npos if all is valid.
static inline size_t utf8_invalid_at(const std::string& s) {
    const unsigned char* b = (const unsigned char*)s.data();
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned c = b[i];
        if (c < 0x80) { i++; continue; }
        int len; unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return i;
        if (i + len > n) return i;
        if (b[i + 1] < lo || b[i + 1] > hi) return i;
        for (int k = 2; k < len; k++) if (b[i + k] < 0x80 || b[i + k] > 0xBF) return i;
        i += len;
    }
    return std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// One JSON line -> prompt, chosen, rejected text

enum InputFormat { FORMAT_AUTO, FORMAT_EXPLICIT, FORMAT_IMPLICIT, FORMAT_MESSAGES };
static const char* const FORMAT_NAMES[] = {"auto", "explicit", "implicit", "messages"};

struct PairText {
    std::string prompt, chosen, rejected;
    InputFormat format = FORMAT_AUTO;   // the format the line was read as
};

// A bad line: `reason` is a short fixed key (the skip counters group by it), `message` says
// what is wrong and what to do.
struct LineError {
    std::string reason, message;
};
static inline bool line_error(LineError* e, const char* reason, const std::string& message) {
    e->reason = reason;
    e->message = message;
    return false;
}

static const std::string ASSISTANT_MARK = "\n\nAssistant:";

// Implicit prompt (Anthropic HH-RLHF): chosen and rejected are whole conversations that share
// their beginning. The prompt is their longest common prefix, cut back to the end of the last
// "\n\nAssistant:" inside it; without one, cut back to just before the prefix's last whitespace
// character. The responses are what follows the prompt in each text.
static inline bool implicit_prompt_split(const std::string& chosen, const std::string& rejected,
                                         PairText* out, LineError* e) {
    size_t lcp = 0, n = std::min(chosen.size(), rejected.size());
    while (lcp < n && chosen[lcp] == rejected[lcp]) lcp++;
    size_t cut = 0;
    size_t mark = chosen.rfind(ASSISTANT_MARK, lcp >= ASSISTANT_MARK.size() ? lcp - ASSISTANT_MARK.size() : 0);
    if (mark != std::string::npos && mark + ASSISTANT_MARK.size() <= lcp) {
        cut = mark + ASSISTANT_MARK.size();
    } else {
        for (size_t i = lcp; i-- > 0;)
            if (chosen[i] == ' ' || chosen[i] == '\n' || chosen[i] == '\t' || chosen[i] == '\r') { cut = i; break; }
    }
    if (cut == 0)
        return line_error(e, "no shared prompt", "\"chosen\" and \"rejected\" share no prompt (no common "
                          "beginning up to \"\\n\\nAssistant:\" or a space); give the prompt explicitly "
                          "as \"prompt\" (--format explicit)");
    if (cut == chosen.size() || cut == rejected.size())
        return line_error(e, "empty response", std::string("the ") + (cut == chosen.size() ? "chosen" : "rejected") +
                          " text ends where the shared prompt ends, so its response is empty; fix or "
                          "remove the line");
    out->prompt = chosen.substr(0, cut);
    out->chosen = chosen.substr(cut);
    out->rejected = rejected.substr(cut);
    return true;
}

// Chat messages [{"role": "user"|"assistant"|"system", "content": "..."}] rendered as text:
// each message is "\n\n" + Role + ": " + content (Role capitalised: System, User, Assistant);
// the prompt then ends with "\n\nAssistant:". A response's first message must be the
// assistant's and is rendered as " " + content, any later messages as above.
static inline bool render_role(const std::string& role, std::string* out) {
    if (role == "system") *out = "System";
    else if (role == "user") *out = "User";
    else if (role == "assistant") *out = "Assistant";
    else return false;
    return true;
}

static inline bool check_messages(const nlohmann::json& list, const char* field, LineError* e) {
    if (!list.is_array())
        return line_error(e, "bad message", std::string("\"") + field + "\" must be a list of "
                          "{\"role\", \"content\"} messages");
    for (size_t i = 0; i < list.size(); i++) {
        const nlohmann::json& m = list[i];
        std::string where = std::string("\"") + field + "\"[" + std::to_string(i) + "]";
        std::string role;
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
            !m["content"].is_string())
            return line_error(e, "bad message", where + " must be an object with string \"role\" and "
                              "\"content\"");
        if (!render_role(m["role"].get<std::string>(), &role))
            return line_error(e, "bad message", where + " has role \"" + m["role"].get<std::string>() +
                              "\"; roles are \"system\", \"user\" and \"assistant\"");
    }
    return true;
}

static inline std::string render_turns(const nlohmann::json& list, size_t from, size_t to) {
    std::string text, role;
    for (size_t i = from; i < to; i++) {
        render_role(list[i]["role"].get<std::string>(), &role);
        text += "\n\n" + role + ": " + list[i]["content"].get<std::string>();
    }
    return text;
}

static inline bool render_response(const nlohmann::json& list, size_t from, const char* field,
                                   std::string* out, LineError* e) {
    if (from >= list.size())
        return line_error(e, "empty response", std::string("\"") + field + "\" has no response message "
                          "after the prompt; fix or remove the line");
    if (list[from]["role"] != "assistant")
        return line_error(e, "bad message", std::string("\"") + field + "\"[" + std::to_string(from) +
                          "] starts the response but has role \"" + list[from]["role"].get<std::string>() +
                          "\"; a response starts with an \"assistant\" message");
    *out = " " + list[from]["content"].get<std::string>() + render_turns(list, from + 1, list.size());
    return true;
}

static inline bool messages_pair(const nlohmann::json& j, PairText* out, LineError* e) {
    const nlohmann::json& c = j["chosen"];
    const nlohmann::json& r = j["rejected"];
    if (!check_messages(c, "chosen", e) || !check_messages(r, "rejected", e)) return false;
    size_t start = 0;  // first response message in chosen and rejected
    if (j.contains("prompt")) {
        if (!check_messages(j["prompt"], "prompt", e)) return false;
        if (j["prompt"].empty())
            return line_error(e, "empty prompt", "\"prompt\" is an empty list; give at least one message");
        out->prompt = render_turns(j["prompt"], 0, j["prompt"].size()) + ASSISTANT_MARK;
    } else {
        // no prompt: the messages chosen and rejected share at their start are the prompt
        while (start < c.size() && start < r.size() && c[start] == r[start]) start++;
        if (start == 0)
            return line_error(e, "no shared prompt", "\"chosen\" and \"rejected\" share no leading "
                              "messages and there is no \"prompt\"; add \"prompt\" as a list of messages");
        out->prompt = render_turns(c, 0, start) + ASSISTANT_MARK;
    }
    return render_response(c, start, "chosen", &out->chosen, e) &&
           render_response(r, start, "rejected", &out->rejected, e);
}

// Lists a JSON object's keys, for error messages.
static inline std::string key_list(const nlohmann::json& j) {
    std::string keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys += (keys.empty() ? "" : ", ") + ("\"" + it.key() + "\"");
    return "{" + keys + "}";
}

static inline bool string_field(const nlohmann::json& j, const char* name, std::string* out, LineError* e) {
    if (!j.contains(name))
        return line_error(e, "missing field", std::string("field \"") + name + "\" is missing (the line has " +
                          key_list(j) + "); see data/README.md for the input formats");
    if (!j[name].is_string())
        return line_error(e, "non-string field", std::string("field \"") + name + "\" is a " + j[name].type_name() +
                          ", not a string; see data/README.md for the input formats");
    *out = j[name].get<std::string>();
    return true;
}

// Reads one parsed JSON line in the given format (FORMAT_AUTO: unknown without any of "prompt",
// "chosen", "rejected"; else messages if one of them is a list, explicit if there is a "prompt",
// implicit otherwise).
static inline bool pair_from_json(const nlohmann::json& j, InputFormat format, PairText* out, LineError* e) {
    if (!j.is_object())
        return line_error(e, "malformed JSON", std::string("the line is a JSON ") + j.type_name() +
                          ", not an object; each line must be one JSON object");
    if (format == FORMAT_AUTO) {
        bool any_list = false, any_key = false;
        for (const char* name : {"prompt", "chosen", "rejected"})
            if (j.contains(name)) { any_key = true; any_list |= j[name].is_array(); }
        if (!any_key)
            return line_error(e, "unknown format", "the line has " + key_list(j) + "; expected \"chosen\" and "
                              "\"rejected\" (with \"prompt\" for the explicit format); see data/README.md");
        format = any_list ? FORMAT_MESSAGES : j.contains("prompt") ? FORMAT_EXPLICIT : FORMAT_IMPLICIT;
    }
    out->format = format;
    if (format == FORMAT_MESSAGES) {
        for (const char* name : {"chosen", "rejected"})
            if (!j.contains(name))
                return line_error(e, "missing field", std::string("field \"") + name + "\" is missing (the line has " +
                                  key_list(j) + "); see data/README.md for the input formats");
        if (!messages_pair(j, out, e)) return false;
    } else {
        std::string chosen, rejected;
        if (format == FORMAT_EXPLICIT && !string_field(j, "prompt", &out->prompt, e)) return false;
        if (!string_field(j, "chosen", &chosen, e) || !string_field(j, "rejected", &rejected, e)) return false;
        if (format == FORMAT_EXPLICIT && out->prompt.empty())
            return line_error(e, "empty prompt", "\"prompt\" is empty; fix or remove the line");
        if (chosen.empty() || rejected.empty())
            return line_error(e, "empty response", std::string("\"") + (chosen.empty() ? "chosen" : "rejected") +
                              "\" is empty; fix or remove the line");
        if (chosen == rejected)
            return line_error(e, "identical chosen and rejected", "\"chosen\" and \"rejected\" are the same "
                              "text, so the pair says nothing; remove the line");
        if (format == FORMAT_IMPLICIT) return implicit_prompt_split(chosen, rejected, out, e);
        out->chosen = chosen;
        out->rejected = rejected;
    }
    if (out->chosen == out->rejected)
        return line_error(e, "identical chosen and rejected", "the chosen and rejected responses are the same "
                          "text, so the pair says nothing; remove the line");
    return true;
}

// One line of the input file (without its newline and a trailing CR) -> prompt, chosen, rejected
// text: the one place a line is checked (a UTF-8 byte order mark only at the start of the file,
// valid UTF-8, JSON through json_parse_text: no exception escapes, nesting bounded), then read in
// the given format. Blank lines are the caller's business.
static inline bool pair_from_line(std::string& line, bool first_line, InputFormat format, PairText* out,
                                  LineError* e) {
    if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) {
        if (!first_line)
            return line_error(e, "byte order mark", "a UTF-8 byte order mark starts this line; one is allowed only "
                              "at the start of the file (were files concatenated?); remove it");
        line.erase(0, 3);
    }
    size_t at = utf8_invalid_at(line);
    if (at != std::string::npos)
        return line_error(e, "invalid UTF-8", "invalid UTF-8 at byte offset " + std::to_string(at) +
                          " of the line; re-encode the file as UTF-8");
    nlohmann::json j;
    std::string why;
    if (!json_parse_text(line, &j, &why, &at)) {
        const char* reason = why.compare(0, 14, "malformed JSON") == 0 ? "malformed JSON"
                           : why.compare(0, 12, "raw NUL byte") == 0 ? "raw NUL byte"
                           : why.compare(0, 14, "nesting deeper") == 0 ? "nesting too deep" : "bad JSON value";
        return line_error(e, reason, why + "; each line must be one complete JSON object");
    }
    try {
        return pair_from_json(j, format, out, e);
    } catch (const nlohmann::json::exception& x) {  // any access the checks in pair_from_json missed
        return line_error(e, "bad JSON value", std::string("unexpected JSON value: ") + x.what());
    }
}

// ---------------------------------------------------------------------------------------------
// Truncation to a maximum shared-unit length P + C + 1 + R

enum TruncatePolicy { TRUNCATE_KEEP_END, TRUNCATE_KEEP_START, TRUNCATE_DROP };
static const char* const TRUNCATE_NAMES[] = {"keep-end", "keep-start", "drop"};

// What fit_pair did to a pair (bits).
enum : unsigned {
    FIT_PROMPT_START_CUT = 1, FIT_PROMPT_END_CUT = 2, FIT_RESPONSES_CUT = 4, FIT_DROPPED = 8,
};

// Shortens chosen and rejected (keeping their starts) so that C + R <= budget, cutting the
// longer one first and keeping at least one token each. Needs budget >= 2.
static inline void cut_responses(std::vector<int32_t>* c, std::vector<int32_t>* r, size_t budget) {
    size_t C = c->size(), R = r->size();
    if (C + R <= budget) return;
    if (C <= budget / 2) R = budget - C;
    else if (R <= budget / 2) C = budget - R;
    else { R = budget / 2; C = budget - R; }
    c->resize(C);
    r->resize(R);
}

// Fits a tokenised pair into P + C + 1 + R <= max_len (max_len >= 4). keep-end drops tokens from
// the prompt's start (after the first `keep_head` tokens, the BOS if any), down to one token,
// then cuts the responses; keep-start cuts the responses, then the prompt's end; drop drops the
// pair. Returns the FIT_* bits of what was done (0: it already fit).
static inline unsigned fit_pair(std::vector<int32_t>* p, std::vector<int32_t>* c, std::vector<int32_t>* r,
                                size_t max_len, TruncatePolicy policy, size_t keep_head) {
    size_t len = p->size() + c->size() + 1 + r->size();
    if (len <= max_len) return 0;
    if (policy == TRUNCATE_DROP) return FIT_DROPPED;
    unsigned done = 0;
    if (policy == TRUNCATE_KEEP_END) {
        size_t remove = std::min(len - max_len, p->size() - 1);
        size_t head = std::min(keep_head, p->size() - remove);
        p->erase(p->begin() + head, p->begin() + head + remove);
        if (remove) done |= FIT_PROMPT_START_CUT;
        size_t before = c->size() + r->size();
        cut_responses(c, r, max_len - 1 - p->size());
        if (c->size() + r->size() < before) done |= FIT_RESPONSES_CUT;
    } else {
        size_t budget = max_len - 1 >= p->size() + 2 ? max_len - 1 - p->size() : 2;
        size_t before = c->size() + r->size();
        cut_responses(c, r, budget);
        if (c->size() + r->size() < before) done |= FIT_RESPONSES_CUT;
        size_t room = max_len - 1 - c->size() - r->size();
        if (p->size() > room) { p->resize(room); done |= FIT_PROMPT_END_CUT; }
    }
    return done;
}
