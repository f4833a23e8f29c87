#!/usr/bin/env python3
"""dev/simt/rewrite_launches.py: rewrites CUDA launches for the CPU build of kernel sources.

    python3 dev/simt/rewrite_launches.py SRC OUT

Every `kernel<targs><<<grid, block[, smem[, stream]]>>>(args)` in SRC becomes
`simt::launch_at(__FILE__, __LINE__, "kernel<targs>", grid, block, smem, kernel<targs>, args)`
(the stream is dropped: the emulator runs launches in order). Comments, string and character
literals are left alone; template arguments may nest <> and hold commas; a launch may span lines.
Every static `__shared__` declaration inside a function gets `SIMT_SHARED_POISON(name);` after
it, on the same line: the emulator fills the array with 0xFF bytes (NaN) when the first thread
of each block reaches it, so a kernel that reads shared memory it did not write this block sees
NaN, not the previous block's values (`extern __shared__` and namespace-scope ones are left as
they are). The output starts with `#line 1 "SRC"` and keeps every newline, so compiler messages
and the emulator's diagnostics name the original file and line. Make runs this into build/cpu/.
"""
import re
import sys


class RewriteError(Exception):
    pass


def code_mask(src):
    """Per character: True where it is code, False inside comments and string/char literals."""
    mask = [True] * len(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == 'R' and src.startswith('R"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == '_')):
            open_paren = src.find("(", i + 2)
            delim = src[i + 2:open_paren]
            j = src.find(")" + delim + '"', open_paren)
            j = n if j < 0 else j + len(delim) + 2
        elif c in "\"'":
            if c == "'" and i > 0 and src[i - 1].isalnum():  # digit separator: 1'000'000
                i += 1
                continue
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            mask[k] = False
        i = j
    return mask


def line_of(src, pos):
    return src.count("\n", 0, pos) + 1


def split_top_level(text, mask, start):
    """Splits text at commas outside (), [], {} (and outside comments/literals)."""
    parts, depth, last = [], 0, 0
    for k, c in enumerate(text):
        if not mask[start + k]:
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[last:k])
            last = k + 1
    parts.append(text[last:])
    return parts


def kernel_start(src, mask, end, path):
    """Start of the kernel expression that ends just before `end` (e.g. ns::kernel<A<B>, C>)."""
    i = end
    while i > 0 and src[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and src[i - 1] == ">":  # template arguments: walk back to the matching '<'
            depth, paren = 0, 0
            j = i - 1
            while j >= 0:
                c = src[j]
                if mask[j]:
                    if c in ")]":
                        paren += 1
                    elif c in "([":
                        paren -= 1
                    elif paren == 0 and c == ">":
                        depth += 1
                    elif paren == 0 and c == "<":
                        depth -= 1
                        if depth == 0:
                            break
                j -= 1
            if j < 0:
                raise RewriteError(f"{path}:{line_of(src, end)}: unbalanced template arguments before <<<")
            i = j
            while i > 0 and src[i - 1].isspace():
                i -= 1
        j = i
        while j > 0 and (src[j - 1].isalnum() or src[j - 1] == "_"):
            j -= 1
        if j == i:
            raise RewriteError(f"{path}:{line_of(src, end)}: no kernel name before <<<")
        i = j
        k = i
        while k > 0 and src[k - 1].isspace():
            k -= 1
        if k >= 2 and src[k - 2:k] == "::":  # qualified name: keep walking back
            i = k - 2
            while i > 0 and src[i - 1].isspace():
                i -= 1
            if i > 0 and (src[i - 1].isalnum() or src[i - 1] in "_>"):
                continue
        return i


def matching(src, mask, open_pos, open_ch, close_ch, path):
    depth = 0
    for k in range(open_pos, len(src)):
        if not mask[k]:
            continue
        if src[k] == open_ch:
            depth += 1
        elif src[k] == close_ch:
            depth -= 1
            if depth == 0:
                return k
    raise RewriteError(f"{path}:{line_of(src, open_pos)}: unbalanced '{open_ch}' in a kernel launch")


def shared_declarations(src, mask, path):
    """(end, names) of each static __shared__ declaration inside a function: the position just
    after its ';' and the names it declares."""
    found = []
    braces = []  # for each open brace: True if it opens a function body or a block inside one
    i, n = 0, len(src)
    statement_start = 0
    while i < n:
        if not mask[i]:
            i += 1
            continue
        c = src[i]
        if c == "#" and src[src.rfind("\n", 0, i) + 1:i].strip() == "":  # a preprocessor line
            j = src.find("\n", i)
            while j > 0 and src[j - 1] == "\\":
                j = src.find("\n", j + 1)
            i = n if j < 0 else j
            statement_start = i
            continue
        if c == "{":
            head = src[statement_start:i]
            braces.append(not re.search(r"\b(namespace|struct|class|union|enum)\b|extern\s*\"", head) or
                          (bool(braces) and braces[-1]))
            statement_start = i + 1
        elif c == "}":
            if braces:
                braces.pop()
            statement_start = i + 1
        elif c == ";":
            statement_start = i + 1
        elif src.startswith("__shared__", i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) \
                and not (src[i + 10:i + 11].isalnum() or src[i + 10:i + 11] == "_"):
            if braces and braces[-1] and not re.search(r"\bextern\s*$", src[statement_start:i]):
                depth, k = 0, i
                while k < n and not (mask[k] and depth == 0 and src[k] == ";"):
                    if mask[k] and src[k] in "([{":
                        depth += 1
                    elif mask[k] and src[k] in ")]}":
                        depth -= 1
                    k += 1
                if k >= n:
                    raise RewriteError(f"{path}:{line_of(src, i)}: __shared__ declaration without ';'")
                names = []
                for part in split_top_level(src[i:k], mask, i):
                    depth, cut = 0, len(part)
                    for q, ch in enumerate(part):
                        if ch in "(":
                            depth += 1
                        elif ch in ")":
                            depth -= 1
                        elif ch == "[" and depth == 0:
                            cut = q
                            break
                    name = re.search(r"([A-Za-z_]\w*)\s*$", part[:cut])
                    if not name:
                        raise RewriteError(f"{path}:{line_of(src, i)}: cannot find the name in a __shared__ declaration")
                    names.append(name.group(1))
                found.append((k + 1, names))
                i = k
        i += 1
    return found


def poison_shared(src, path):
    mask = code_mask(src)
    out, pos = [], 0
    for end, names in shared_declarations(src, mask, path):
        out.append(src[pos:end])
        out.append("".join(f" SIMT_SHARED_POISON({name});" for name in names))
        pos = end
    out.append(src[pos:])
    return "".join(out)


def rewrite(src, path):
    src = poison_shared(src, path)
    mask = code_mask(src)
    out, pos = [], 0
    search = 0
    while True:
        at = src.find("<<<", search)
        while at >= 0 and not mask[at]:
            at = src.find("<<<", at + 1)
        if at < 0:
            break
        line = line_of(src, at)
        start = kernel_start(src, mask, at, path)
        kernel = src[start:at].rstrip()
        # the launch configuration: up to the first '>>>' outside parentheses
        depth, k = 0, at + 3
        while k < len(src):
            if mask[k]:
                if src[k] in "([{":
                    depth += 1
                elif src[k] in ")]}":
                    depth -= 1
                elif depth == 0 and src.startswith(">>>", k):
                    break
            k += 1
        if k >= len(src):
            raise RewriteError(f"{path}:{line}: '<<<' without a matching '>>>'")
        config = split_top_level(src[at + 3:k], mask, at + 3)
        if not 2 <= len(config) <= 4:
            raise RewriteError(f"{path}:{line}: a launch needs 2 to 4 values in <<<...>>>, found {len(config)}")
        p = k + 3
        while p < len(src) and src[p].isspace():
            p += 1
        if p >= len(src) or src[p] != "(":
            raise RewriteError(f"{path}:{line}: expected '(' and the kernel's arguments after '>>>'")
        close = matching(src, mask, p, "(", ")", path)
        args = src[p + 1:close]
        smem = config[2] if len(config) >= 3 else "0"
        name = " ".join(kernel.split()).replace("\\", "\\\\").replace('"', '\\"')
        call = f'simt::launch_at(__FILE__, __LINE__, "{name}", {config[0]}, {config[1]}, {smem}, {kernel}'
        if args.strip():
            call += "," + args
        call += ")"
        # keep the line count: newlines of dropped text (the stream, spaces) go after the call
        dropped = src[start:close + 1].count("\n") - call.count("\n")
        out.append(src[pos:start])
        out.append(call + "\n" * max(dropped, 0))
        pos = search = close + 1
    out.append(src[pos:])
    return "".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: rewrite_launches.py SRC OUT")
    src_path, out_path = sys.argv[1], sys.argv[2]
    try:
        with open(src_path, encoding="utf-8") as f:
            src = f.read()
        text = f'#line 1 "{src_path}"\n' + rewrite(src, src_path)
    except RewriteError as e:
        sys.exit(f"rewrite_launches: error: {e}")
    except OSError as e:
        sys.exit(f"rewrite_launches: error: cannot read {src_path}: {e.strerror}")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
