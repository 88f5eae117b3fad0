"""Sample texts for the shipped grammars in ``grammars/``.

``VALID[name]`` / ``INVALID[name]`` hold texts that the grammar
``grammars/<name>.lark`` must accept / reject. Every sample is chosen so that
Lark (LALR, contextual lexer), a greedy longest-match no-backtracking lexer and
llguidance all agree on it: there are no samples that rely on a keyword being
used as an identifier in a position where only an identifier can appear (the
contextual lexers accept those, see ``tests/test_grammars.py``).

Helpers:

* ``load_grammar(name)`` -- the text of ``grammars/<name>.lark``.
* ``NON_LALR`` -- grammars that are not LALR(1) (the GLR suite of tests/automata/test_glr.py), with
  words in and out of their languages.
* ``llguidance_lark(text)`` -- the same grammar text with the llguidance-only
  directive that allows ``%ignore`` content before the first token. Lark skips
  leading ignored text; llguidance by default does not (it only allows ignored
  text *between* and *after* lexemes), and Lark itself rejects the directive,
  so it cannot live in the shipped ``.lark`` files.
"""

from __future__ import annotations

from pathlib import Path

GRAMMARS_DIR = Path(__file__).resolve().parents[1] / "grammars"

GRAMMAR_NAMES = ("json", "arithmetic", "sql", "minilang")

LLGUIDANCE_PRELUDE = '%llguidance {"allow_initial_skip": true}\n'


def load_grammar(name: str) -> str:
    """Return the text of ``grammars/<name>.lark``."""
    return (GRAMMARS_DIR / f"{name}.lark").read_text(encoding="utf-8")


def llguidance_lark(text: str) -> str:
    """Lark grammar text -> the text to hand to llguidance for the same language."""
    return LLGUIDANCE_PRELUDE + text


# --------------------------------------------------------------------- JSON

JSON_VALID = [
    "{}",
    "[]",
    "0",
    "-0",
    '"hello"',
    '""',
    "true",
    "false",
    "null",
    '  {"a": 1, "b": [true, false, null]}  \n',
    "[0, -1, 12, 1.5, -0.25, 1e10, 1E-5, 2.5e+3, -0.0e0, 10E+0, 0.000001]",
    "123456789012345678901234567890",
    "-1.7976931348623157e308",
    r'"\" \\ \/ \b \f \n \r \t"',
    r'"\u0041\u00e9\uD83D\uDE00\u0000\u001f\uffff"',
    '"h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001f600"',
    '"line\u2028sep\u2029 and DEL \x7f and a/b"',
    "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    '{"a":{"b":{"c":{"d":[1,{"e":null,"f":[[],{}]}]}}}}',
    "\t\r\n[ 1 ,\n\t2 ]\r\n",
    '{"":""}',
    '{\n  "name": "structgen",\n  "version": "0.1.0",\n  "tags": [\n    "llm",\n    "grammar"\n  ],\n'
    '  "nested": {\n    "ok": true,\n    "ratio": 0.75\n  }\n}',
    '{"key with spaces": "value", "numbers": [1, 2.0, -3e2], "empty": {}}',
    r'"\\\\server\\share"',
    r'{"emoji":"\ud83d\ude00","mixed":"tab\there","quote":"say \"hi\""}',
    "1.0E+2",
    '{"data":[{"id":1,"tags":["a","b"],"score":9.5},{"id":2,"tags":[],"score":-0.5}],"next":null}',
    '[\n\n\n]',
    '{"a"  :  [ 1 , { "b" : "c" } ] , "d" : -12.5e-3 }',
    '"\U0010ffff \u00a0 \ufeff"',
    "[1,2,3]",
]

JSON_INVALID = [
    "",
    "   ",
    '{"a":1,}',
    "[1,2,]",
    "01",
    "-01",
    "1.",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    "1.5.2",
    "0x1F",
    "NaN",
    "Infinity",
    "-Infinity",
    "'single'",
    '"unterminated',
    r'"bad \x41 escape"',
    r'"\u12"',
    r'"\U0041"',
    '"raw\ttab"',
    '"raw newline\n"',
    '"raw nul \x00"',
    "{a: 1}",
    '{"a" 1}',
    "[1 2]",
    "1 2",
    "True",
    "nul",
    '{"a":1}}',
    "[",
    "\f1",
    "[1,,2]",
    '{"a":1 "b":2}',
    "{1: 2}",
    "// comment\n1",
]

# --------------------------------------------------------------- arithmetic

ARITHMETIC_VALID = [
    "1",
    "42",
    "3.14",
    ".5",
    "x",
    "_tmp1",
    "1 + 2",
    "1+2*3",
    "(1 + 2) * 3",
    "-x",
    "--x",
    "-(a + b)",
    "2 ** 3 ** 2",
    "2^3^2",
    "-2 ** 2",
    "2 ** -1",
    "a % b",
    "10 / 4 - 3",
    "f()",
    "f(x)",
    "max(a, b, c)",
    "sqrt(x ** 2 + y ** 2)",
    "f(g(h(1)), 2)",
    "  1\n+\t2  ",
    "+5",
    "a*b/c%d",
    "((((1))))",
    "atan2(y, x) * 180 / pi",
    "1 - -1",
    "x**y*z",
    "3.0 * (r ^ 2) + 0.5",
    "a-b-c",
    "2*-3",
]

ARITHMETIC_INVALID = [
    "",
    "   ",
    "1 +",
    "* 2",
    "(1 + 2",
    "1 + 2)",
    "f(,)",
    "f(a,)",
    "1 2",
    "2 *** 3",
    "1.",
    "1..2",
    "a b",
    "f(a b)",
    "()",
    "2 **",
    "1 // 2",
    "3!",
    "x = 1",
    "1e5",
    "f)(",
    "2 ^^ 3",
    "[1]",
]

# ---------------------------------------------------------------------- SQL

SQL_VALID = [
    "SELECT * FROM users",
    "select id, name from users;",
    "SELECT DISTINCT country FROM customers ORDER BY country",
    "SELECT u.id, u.name AS user_name, o.total FROM users u JOIN orders o ON u.id = o.user_id",
    "SELECT COUNT(*) FROM orders WHERE status = 'shipped'",
    "SELECT department, AVG(salary) AS avg_salary FROM employees GROUP BY department "
    "HAVING AVG(salary) > 50000 ORDER BY avg_salary DESC",
    "SELECT name FROM products WHERE price BETWEEN 10 AND 20 AND stock > 0",
    "SELECT * FROM t WHERE a IN (1, 2, 3)",
    "SELECT * FROM t WHERE name LIKE 'A%' OR name NOT LIKE '%z'",
    "SELECT * FROM t WHERE deleted_at IS NULL",
    "SELECT * FROM t WHERE x IS NOT NULL AND NOT (y <> 3 OR z != 4)",
    "SELECT * FROM t WHERE a <= 1 AND b >= 2 AND c < 3 AND d > 4 AND e = 5",
    "SELECT 'it''s' AS s, '' AS empty FROM dual",
    "SELECT id FROM t LIMIT 10",
    "SELECT id FROM t ORDER BY created_at DESC, id ASC LIMIT 20 OFFSET 40;",
    "SELECT a.*, b.name FROM a LEFT JOIN b ON a.b_id = b.id",
    "SELECT * FROM a INNER JOIN b ON a.id = b.a_id LEFT OUTER JOIN c ON c.id = b.c_id "
    "RIGHT JOIN d ON d.id = c.d_id FULL OUTER JOIN e ON e.id = d.e_id",
    "SELECT price * quantity AS total, -discount FROM line_items",
    "SELECT COUNT(DISTINCT user_id) FROM events WHERE ts >= '2024-01-01'",
    "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 100)",
    "SeLeCt Name FrOm People wHeRe Age>=18",
    "SELECT CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 THEN 'B' ELSE 'C' END AS grade FROM results",
    "SELECT * FROM (SELECT id, total FROM orders) AS sub WHERE sub.total > 5",
    "SELECT\n\tc.name,\n\tSUM(o.amount) AS revenue\nFROM customers AS c\n\tJOIN orders AS o ON o.customer_id = c.id\n"
    "WHERE o.status <> 'cancelled'\nGROUP BY c.name\nHAVING SUM(o.amount) >= 1000.50\nORDER BY revenue DESC\nLIMIT 5;\n",
    'SELECT "Order Id", "weird""name" FROM "My Table"',
    "SELECT MAX(price), MIN(price), SUM(qty) FROM sales GROUP BY region, year",
    "SELECT * FROM t WHERE a NOT IN ('x', 'y') AND b NOT BETWEEN 1 AND 5",
    "SELECT order_id, fromage, selected, isbn FROM orders_table",
    "SELECT * FROM a CROSS JOIN b",
    "SELECT x FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x = t.x)",
    "SELECT (a + b) / 2.5 % 3 FROM t",
    "SELECT a FROM s.t1, s.t2 AS x WHERE t1.id=x.id",
    "SELECT * FROM t WHERE a=1 OR b=2 AND c=3",
    "SELECT * FROM t WHERE flag = TRUE OR flag = false",
    "SELECT id FROM t WHERE (SELECT COUNT(*) FROM u WHERE u.t_id = t.id) > 2",
]

SQL_INVALID = [
    "",
    "SELECT FROM t",
    "SELECT * FROM",
    "SELECT * t",
    "SELECT * FROM t WHERE = 1",
    "SELECT a, FROM t",
    "SELECT * FROM t WHERE a == 1",
    "SELECT * FROM t WHERE a = 'unterminated",
    "SELECT * FROM t ORDER id",
    "SELECT * FROM t LIMIT 5 5",
    "SELECT * FROM t LIMIT 'ten'",
    "SELECT * FROM t WHERE a IS NULL NULL",
    "SELECT * FROM t WHERE a BETWEEN 1",
    "SELECT * FROM t WHERE a IN ()",
    "SELECT * FROM t JOIN u",
    "SELECT * FROM t;;",
    "SELECT * FROM t WHERE a => 1",
    "SELECT * FROM t GROUP department",
    "SELECT * FROM t WHERE a = 1 AND",
    "SELECT * FROM t WHERE a = 1 b = 2",
    "SELECT * FROM t WHERE a LIKE",
    "SELECT COUNT(* FROM t",
    "UPDATE t SET a = 1",
    "SELECT * FROM t WHERE a < > 1",
    "SELECT * FROM t WHERE 'it's' = a",
    "SELECT * FROM t ORDER BY a DESC ASC",
    "SELECT * FROM t LIMIT 1 OFFSET",
    "SELECT * FROM t WHERE a = 1e5",
]

# ----------------------------------------------------------------- minilang

MINILANG_VALID = [
    "",
    "   \n\t",
    "// only a comment",
    "let x = 1;",
    "let y;",
    "x = x + 1;",
    'print("hello, world");',
    "function add(a, b) { return a + b; }",
    "function noop() {}",
    "return;",
    "{ { { let deep = 1; } } }",
    "if (x > 0) { y = 1; }",
    "if (x > 0) { y = 1; } else { y = 2; }",
    "if (a == b) { f(); } else if (a < b) { g(); } else { h(); }",
    "while (i < 10) { i = i + 1; }",
    "let s = \"with \\\"escaped\\\" quotes and \\n newline\";",
    "let xs = [1, 2.5, \"three\", [true, false, null]];",
    "xs[0] = xs[1] * 2;",
    "let v = m[i][j];",
    "let r = f(1)(2);",
    "let b = !done && (count >= 3 || count <= -3);",
    "let z = a != b;",
    "let q = 10 / 2 % 3 - -1;",
    "function fib(n) {\n  if (n < 2) { return n; }\n  return fib(n - 1) + fib(n - 2);\n}\nprint(fib(10));\n",
    "function outer() {\n  function inner(x) { return x * 2; }\n  return inner(21);\n}\n",
    "let i = 0; // counter\nwhile (true) {\n  if (i >= 3) { break; }\n  i = i + 1; // step\n  continue;\n}\n",
    "let letter = 1; let iffy = 2; let returned = letter + iffy; let whiley = 0;",
    "let a = 1;let b=2;if(a<b){print(a);}else{print(b);}",
    "f(a, g(b, h(c)), [d]);",
    "let x = ((((1))));",
    "let e = [];\nlet empty_call = f();",
    "let x = 1 < 2 == 3 > 4;",
    "function max(a, b) {\n  // pick the larger\n  if (a > b) {\n    return a;\n  } else {\n    return b;\n  }\n}",
]

MINILANG_INVALID = [
    "let x = 1",
    "let 1 = x;",
    "x + ;",
    "if x > 0 { y = 1; }",
    "if (x > 0) y = 1;",
    "while (true) { ",
    "}",
    "function (a) { }",
    "function f(a,) { }",
    "let s = \"unterminated;",
    "let s = \"multi\nline\";",
    "let x = 1 === 2;",
    "let x = a =< b;",
    "else { }",
    "return 1",
    "let x = 1..2;",
    "f(1, 2;",
    "x = = 1;",
    "let x = a & b;",
    "1 = x;",
    "let x = 1 /* c */;",
    "if (x) { } else",
    "let x = 'single';",
]

# ------------------------------------------------------ documented divergences

# Accepted by Lark's contextual lexer (and by any lexer that only tries the
# terminals the parser can accept next, structgen's included) although a
# non-contextual reading would reject them: a keyword is lexed as NAME where
# only NAME is acceptable, and no word boundary is required after a keyword
# when nothing identifier-like may follow it. llguidance accepts them too.
CONTEXTUAL_QUIRKS = {
    "sql": [
        "SELECTa FROM t",
        "SELECT*FROMt",
        "SELECT select FROM from",
        "SELECT a FROM t WHERE where = 1",
        "SELECT a AS from FROM t",
    ],
    "minilang": [
        "let x = while;",
        "let if = 1;",
        "function return() {}",
    ],
}

# Accepted by llguidance but rejected by Lark (and by a keyword-wins greedy
# lexer): llguidance has no keyword-over-identifier priority, so a keyword may
# also be lexed as NAME where both are acceptable.
LLGUIDANCE_ONLY = {
    "sql": [
        "SELECT * FROM t WHERE",
        "SELECT * FROM t LIMIT",
        "SELECT a FROM t ORDER",
        "SELECT a FROM t left",
    ],
    "minilang": [
        "let = 1;",
        "if = 2;",
        "while;",
    ],
}

VALID = {
    "json": JSON_VALID,
    "arithmetic": ARITHMETIC_VALID,
    "sql": SQL_VALID,
    "minilang": MINILANG_VALID,
}

INVALID = {
    "json": JSON_INVALID,
    "arithmetic": ARITHMETIC_INVALID,
    "sql": SQL_INVALID,
    "minilang": MINILANG_INVALID,
}


# (name, Lark grammar, words in the language, words not in it): each has LR conflicts (GLR), except
# nullable_cycle, whose cycle a -> b -> a leaves no conflict in the tables but must not loop
NON_LALR = [
    ("ambiguous_expr", 'start: e\ne: e "+" e | e "*" e | "(" e ")" | NUM\nNUM: /[0-9]+/\n',
     ["1+2*3", "(1+2)*3+(4)", "7"], ["1+", "(1", "1)"]),
    ("lr2", 'start: a "x" "y" | b "x" "z"\na: "q"\nb: "q"\n', ["qxy", "qxz"], ["qxx", "qy"]),
    ("palindromes", 'start: p\np: "a" p "a" | "b" p "b" | "a" | "b" |\n', ["abba", "aba", "", "babbab"],
     ["ab", "abb"]),
    ("anbn_or_anb2n", 'start: x | y\nx: "a" x "b" | "a" "b"\ny: "a" y "b" "b" | "a" "b" "b"\n',
     ["aabb", "aabbbb", "ab", "abb"], ["aabbb", "aab", "b"]),
    ("dangling_else", 'start: s\ns: "if" "c" "then" s | "if" "c" "then" s "else" s | "x"\n%ignore " "\n',
     ["if c then if c then x else x", "x"], ["if c then x else", "else x"]),
    ("hidden_left_recursion", 'start: s\ns: a s "b" | "c"\na: "d" |\n', ["c", "cbb", "dcb", "ddcbb", "dcbb"],
     ["cdb", "d"]),
    ("nullable_cycle", 'start: a\na: b | "x" a | \nb: a | "y" | "y" b\n', ["", "xxy", "yy", "xyx"], ["z"]),
]
