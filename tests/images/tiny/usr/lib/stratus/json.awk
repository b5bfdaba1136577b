# Flatten a JSON document into one line per leaf value:
#
#     <path><TAB><value>
#
# Object keys and array indexes are joined with "." ({"a": {"b": [1, "x"]}}
# gives "a.b.0	1" and "a.b.1	x"). String escapes are decoded; tabs,
# carriage returns and newlines inside values become spaces and trailing
# blanks are dropped, so every value fits on its line (SSH keys from Nova
# end with "\n"). Empty objects and arrays produce no line. Written for
# busybox awk: no gawk extensions, locals are extra function parameters.
#
# Usage: awk -f json.awk meta_data.json
#        awk -v want=uuid -f json.awk meta_data.json   (only that value)

BEGIN { s = ""; failed = 0 }
{ s = s $0 "\n" }
END {
    n = length(s)
    p = 1
    value("")
    skip_blanks()
    if (p <= n) fail("trailing characters")
    exit failed
}

function fail(msg) {
    if (!failed) printf "json.awk: %s at offset %d\n", msg, p > "/dev/stderr"
    failed = 1
    p = n + 1
}

function skip_blanks(    c) {
    while (p <= n) {
        c = substr(s, p, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") break
        p++
    }
}

function emit(path, v) {
    gsub(/[\t\r\n]/, " ", v)
    sub(/[ ]+$/, "", v)
    if (want == "" ) print path "\t" v
    else if (path == want) print v
}

function join(path, key) {
    return path == "" ? key : path "." key
}

function value(path,    c, key, i) {
    skip_blanks()
    if (p > n) { fail("unexpected end"); return }
    c = substr(s, p, 1)
    if (c == "{") {
        p++
        skip_blanks()
        if (substr(s, p, 1) == "}") { p++; return }
        while (p <= n) {
            skip_blanks()
            if (substr(s, p, 1) != "\"") { fail("expected a key"); return }
            key = string()
            skip_blanks()
            if (substr(s, p, 1) != ":") { fail("expected ':'"); return }
            p++
            value(join(path, key))
            skip_blanks()
            c = substr(s, p, 1)
            p++
            if (c == "}") return
            if (c != ",") { fail("expected ',' or '}'"); return }
        }
        fail("unterminated object")
    } else if (c == "[") {
        p++
        skip_blanks()
        if (substr(s, p, 1) == "]") { p++; return }
        i = 0
        while (p <= n) {
            value(join(path, i))
            i++
            skip_blanks()
            c = substr(s, p, 1)
            p++
            if (c == "]") return
            if (c != ",") { fail("expected ',' or ']'"); return }
        }
        fail("unterminated array")
    } else if (c == "\"") {
        emit(path, string())
    } else if (match(substr(s, p, 40), /^(-?[0-9][-+0-9.eE]*|true|false|null)/)) {
        emit(path, substr(s, p, RLENGTH))
        p += RLENGTH
    } else {
        fail("unexpected character '" c "'")
    }
}

# Decode the string that starts at p (on its opening quote).
function string(    out, c, rest) {
    p++
    out = ""
    while (p <= n) {
        rest = substr(s, p)
        if (match(rest, /^[^"\\]+/)) {
            out = out substr(rest, 1, RLENGTH)
            p += RLENGTH
            continue
        }
        c = substr(s, p, 1)
        if (c == "\"") { p++; return out }
        # a backslash escape
        c = substr(s, p + 1, 1)
        p += 2
        if (c == "n") out = out "\n"
        else if (c == "t") out = out "\t"
        else if (c == "r") out = out "\r"
        else if (c == "b" || c == "f") out = out " "
        else if (c == "u") { out = out codepoint(substr(s, p, 4)); p += 4 }
        else out = out c
    }
    fail("unterminated string")
    return out
}

# \uXXXX as UTF-8 bytes (surrogate pairs are not combined: become "?").
function codepoint(hex,    v, i, d) {
    v = 0
    hex = tolower(hex)
    for (i = 1; i <= 4; i++) {
        d = index("0123456789abcdef", substr(hex, i, 1))
        if (d == 0) return "?"
        v = v * 16 + d - 1
    }
    if (v >= 55296 && v <= 57343) return "?"
    if (v < 128) return sprintf("%c", v)
    if (v < 2048)
        return sprintf("%c%c", 192 + int(v / 64), 128 + v % 64)
    return sprintf("%c%c%c", 224 + int(v / 4096), 128 + int(v / 64) % 64, 128 + v % 64)
}
