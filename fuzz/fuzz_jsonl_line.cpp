// libFuzzer target: one line of prepare_dpo's input through data/prepare_text.h's pair_from_line,
// in each format (auto, explicit, implicit, messages) and as the first and a later line. A line
// is read into non-empty, differing responses or refused with a reason and a message.
#include "data/prepare_text.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    for (int format = FORMAT_AUTO; format <= FORMAT_MESSAGES; format++) {
        for (bool first : {true, false}) {
            std::string line((const char*)data, size);
            PairText text;
            LineError e;
            if (pair_from_line(line, first, (InputFormat)format, &text, &e)) {
                if (text.chosen.empty() || text.rejected.empty() || text.chosen == text.rejected) abort();
            } else if (e.reason.empty() || e.message.empty()) {
                abort();
            }
        }
    }
    return 0;
}
