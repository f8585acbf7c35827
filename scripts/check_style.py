#!/usr/bin/env python3
"""check_style.py - the style checks of `make lint` that cppcheck does not make.

Usage: scripts/check_style.py [SRC_DIR]   (default: src)

1. Indentation: every statement of a .c/.h file starts with one tab per
   open brace (kernel style: `case` labels one tab less, goto labels at any
   smaller indent).  Continuation lines (the line before does not end a
   statement) are free, so aligned arguments stay possible.  This is the
   check that catches a line indented as if it were outside its block.
2. Include direction: each folder of src/ is a layer, and a file includes
   only headers of its own layer or of layers below it:
       base < config < data < store < node.h < cluster < http < main.c, node.c
   A cycle or an arrow pointing up means a module is in the wrong room.
   The client side stands apart: src/client/ (libkvs) includes no header of
   the node's layers, src/kvsctl/ of libkvs only kvs_client.h.

Prints FILE:LINE: message for each problem; exits 1 if there was any.
"""
import os
import re
import sys

LAYERS = ["base", "config", "data", "store", "node", "cluster", "http", "top"]
RANK = {name: i for i, name in enumerate(LAYERS)}


def strip_code(text):
    """The text with comments and string/char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


CONTROL = re.compile(r"(if|for|while|else|do)\b")


def check_indent(path, problems):
    """Indentation of each statement's first line against the braces and
    brace-less controls (if/for/while/else/do) that enclose it."""
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    code = strip_code("\n".join(raw)).split("\n")
    stack = []            # per open brace: (indent of its line, statement indent outside)
    stmt_indent = 0       # indent of a statement at the current brace level
    pending = 0           # brace-less controls waiting for their statement
    line_indent = 0       # expected indent of the current statement's first line
    parens = 0            # open parentheses of the current statement
    in_header = False     # inside the (...) of a control's header
    starts_statement = True
    in_macro = False
    for no, (line, stripped) in enumerate(zip(raw, code), 1):
        s = stripped.strip()
        if in_macro or s.startswith("#"):
            in_macro = stripped.rstrip().endswith("\\")
            continue
        if not s:
            continue
        closers = len(s) - len(s.lstrip("}"))
        for _ in range(closers):
            if stack:
                line_indent, stmt_indent = stack.pop()
                pending = 0
        if starts_statement:
            if not closers:
                line_indent = stmt_indent + pending
            tabs = len(line) - len(line.lstrip("\t"))
            after = line[tabs:tabs + 1]
            is_case = re.match(r"(case\b|default\s*:)", s)
            is_label = re.match(r"[A-Za-z_]\w*\s*:(?!:)", s) and not is_case
            ok = tabs == line_indent and after not in (" ", "\t")
            if is_case:
                ok = ok or tabs == line_indent - 1
            if is_label:
                ok = tabs <= line_indent
            if not ok:
                problems.append(f"{path}:{no}: indented {tabs} tab(s), expected {line_indent}")
            in_header = bool(CONTROL.match(s[closers:].lstrip()))
        parens = max(parens + s.count("(") - s.count(")"), 0)
        rest = s[closers:]
        net = rest.count("{") - rest.count("}")
        for _ in range(max(net, 0)):
            stack.append((line_indent, stmt_indent))
            stmt_indent, pending = line_indent + 1, 0
        for _ in range(max(-net, 0)):
            if stack:
                line_indent, stmt_indent = stack.pop()
        header_done = in_header and parens == 0
        if header_done:
            in_header = False
            if s[-1] not in ";{":
                pending += 1  # the next line is this control's statement
        if s[-1] == ";" and parens == 0:
            pending = 0
        starts_statement = parens == 0 and (s[-1] in ";{}:" or (header_done and s[-1] not in ";{"))


def layer_of(path, src):
    rel = os.path.relpath(path, src)
    parts = rel.split(os.sep)
    if len(parts) == 1:
        return "node" if parts[0] == "node.h" else "top"
    return parts[0]


# The client side stands apart from the node: libkvs (client/) includes no
# header of the node's layers, and kvsctl (kvsctl/) of libkvs only its public one.
CLIENT_SIDE = {"client": set(), "kvsctl": {"kvs_client.h"}}


def check_client_includes(p, mine, target, theirs, no, problems):
    if mine == "client" and theirs in RANK:
        problems.append(f"{p}:{no}: libkvs includes {os.path.basename(target)} of the node "
                        f"({theirs}/): the client library stands apart")
    elif mine == "kvsctl" and theirs != "kvsctl" and \
            os.path.basename(target) not in CLIENT_SIDE["kvsctl"]:
        problems.append(f"{p}:{no}: kvsctl includes {os.path.basename(target)}: it uses "
                        f"libkvs's public header kvs_client.h only")


def check_includes(src, files, problems):
    where = {}
    for p in files:
        if p.endswith(".h"):
            where.setdefault(os.path.basename(p), p)
    for p in files:
        mine = layer_of(p, src)
        if mine in CLIENT_SIDE:
            with open(p, encoding="utf-8") as f:
                for no, line in enumerate(f, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if m and os.path.basename(m.group(1)) in where:
                        target = where[os.path.basename(m.group(1))]
                        check_client_includes(p, mine, target, layer_of(target, src), no,
                                              problems)
            continue
        if mine not in RANK:
            continue
        with open(p, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m or os.path.basename(m.group(1)) not in where:
                    continue
                target = where[os.path.basename(m.group(1))]
                theirs = layer_of(target, src)
                if theirs in RANK and RANK[theirs] > RANK[mine]:
                    problems.append(f"{p}:{no}: {mine}/ includes {m.group(1)} of the layer "
                                    f"above ({theirs}): includes point down only")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "compat")
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".c", ".h"))]
    problems = []
    for p in files:
        check_indent(p, problems)
    check_includes(src, files, problems)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
