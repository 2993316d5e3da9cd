"""The TGPO authors' grading rules (protocol "authors"), written here from their public description.

Sources read (never copied): helldog-star/TGPO `eval_scripts/generate_vllm.py` run with the flags of
`eval_scripts/my_eval_sh.sh` (`--add_oat_evaluate True --any_true True`), a fork of ElliottYan/LUFFY
`eval_scripts/generate_vllm.py`; the boxed half is Oat's `boxed_reward_fn(..., fast=False)`
(sail-sg/understand-r1-zero `understand_r1_zero/math_grader.py`, shipped by both repositories as
`eval_scripts/oat_math_grader.py`). The rules, as numbered in the tests (tests/test_eval_authors_parity.py):

    R1 segment   When the prompt ended with "<think>\\n" (`think_opened`), the response is read as
                 "<think>\\n" + response and the answer segment is the text between the first and the
                 second "</think>" (a `split("</think>")[1]`): text after a second "</think>" is ignored.
    R2 no close  With `think_opened` and no "</think>" there is no segment: Math-Verify is skipped (its
                 label is False) and the boxed grader reads the whole "<think>\\n" + response.
    R3 no think  Without `think_opened` both graders read the whole response.
    R4 verify    Math-Verify: verify(parse("$" + gold + "$"), parse(segment)), default configs, gold first.
    R5 box       Boxed grader: the content of the last "\\boxed{...}" of its text; a last "\\boxed" with no
                 closed brace group, or only "\\fbox", gives no answer (False).
    R6 equal     The box equals the gold when (a) their mathd-normalised strings are equal, or (b) the
                 sympy grader accepts them (PRM800K-style normalisation, tuples and intervals element by
                 element with matching brackets, integers and plain fractions compared as written, else
                 sympy.simplify of the difference), or (c) Math-Verify accepts the two boxed strings.
    R7 any       Final label = R4 OR R5/R6 (`any_true`).

Multiple-choice golds (a letter) go through the same rules: `\\boxed{C}`, `\\boxed{(C)}`,
`\\boxed{\\text{C}}` and `\\boxed{c}` are accepted, a bare "ANSWER: C" is not.

The normalisation tables below are this project's (shorter than Oat's MathQA unit list); where they
differ from Oat's, a response can grade differently: docs/evaluation.md lists the known cases.
Every function here is pure and may run long on hostile input (sympy): call it through
`eval.grading_pool.GradingPool` / `grade_response`, which bound each item with a hard timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>\n"
THINK_END = "</think>"


@dataclass(frozen=True)
class AuthorsLabel:
    """The two halves of the authors' label and the texts they read."""

    correct: bool
    math_verify: bool | None  # None: not run (the boxed grader already accepted; the OR cannot change)
    boxed: bool
    boxed_answer: str | None  # content of the last \boxed{} the boxed grader read (None: none)
    segment: str | None  # what Math-Verify read (None: skipped, rule R2)


# ------------------------------------------------------------------------------------------ R1-R3


def graded_texts(response: str, think_opened: bool) -> tuple[str | None, str]:
    """(text Math-Verify reads or None when it is skipped, text the boxed grader reads): rules R1-R3."""
    if not think_opened:
        return response, response
    text = THINK_OPEN + response
    parts = text.split(THINK_END)
    if len(parts) < 2:
        return None, text
    return parts[1], parts[1]


# ---------------------------------------------------------------------------------------------- R5


def last_boxed_content(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (rule R5); None when `\\boxed` is absent, not followed by a
    brace group, or its braces never close."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    opening = start + len("\\boxed")
    if not text.startswith("{", opening):
        return None
    depth = 0
    for position in range(opening, len(text)):
        character = text[position]
        if character == "{":
            depth += 1
        elif character == "}":
            depth -= 1
            if depth == 0:
                return text[opening + 1 : position]
    return None


# ---------------------------------------------------------------------------- R6a mathd normalisation

# Words written after a number as its unit; removed as whole words (the Hendrycks/MathQA idea, our list).
UNIT_WORDS = (
    "degrees",
    "degree",
    "deg",
    "cm",
    "mm",
    "km",
    "m",
    "meters",
    "meter",
    "metres",
    "metre",
    "inches",
    "inch",
    "feet",
    "foot",
    "ft",
    "yards",
    "yard",
    "miles",
    "mile",
    "mph",
    "kmph",
    "kg",
    "g",
    "grams",
    "gram",
    "pounds",
    "lb",
    "lbs",
    "dollars",
    "dollar",
    "cents",
    "cent",
    "units",
    "unit",
    "hours",
    "hour",
    "hr",
    "minutes",
    "minute",
    "min",
    "seconds",
    "second",
    "sec",
    "days",
    "day",
    "weeks",
    "week",
    "months",
    "month",
    "years",
    "year",
    "liters",
    "liter",
    "litres",
    "litre",
    "gallons",
    "gallon",
    "square",
    "sq",
    "cubic",
    "percent",
)
_UNIT_PATTERN = re.compile(
    r"(^|\W)(?:" + "|".join(sorted(map(re.escape, UNIT_WORDS), key=len, reverse=True)) + r")(?=$|\W)"
)


def _brace_fractions(text: str) -> str:
    r"""`\frac12` -> `\frac{1}{2}`, `\frac1{7}` -> `\frac{1}{7}`: single-character arguments get braces."""
    pieces = text.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece or piece[0] == "{":
            out += "\\frac" + piece
            continue
        if len(piece) < 2:
            return text
        numerator, rest = piece[0], piece[1:]
        if rest[0] == "{":
            out += "\\frac{" + numerator + "}" + rest
        else:
            out += "\\frac{" + numerator + "}{" + rest[0] + "}" + rest[1:]
    return out


def _brace_roots(text: str) -> str:
    r"""`\sqrt3` -> `\sqrt{3}`."""
    return re.sub(r"\\sqrt(?!\{)(\w)", r"\\sqrt{\1}", text)


def _slash_fraction(text: str) -> str:
    """`3/4` (two integers) -> `\\frac{3}{4}`."""
    match = re.fullmatch(r"(-?\d+)/(\d+)", text)
    return f"\\frac{{{match.group(1)}}}{{{match.group(2)}}}" if match else text


def mathd_normalise(answer: str) -> str:
    """Hendrycks-MATH-style string normal form (rule R6a): wrappers, spacing, units, degree signs,
    `\\left`/`\\right`, dfrac/tfrac, short fractions and roots, a short `x =` prefix."""
    text = answer.strip()
    wrapped = re.fullmatch(r"\\text\{(.+?)\}", text)
    if wrapped:
        text = wrapped.group(1).strip()
    text = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = re.sub(r"\\begin\{array\}\{[^}]*\}", r"\\begin{pmatrix}", text)
    text = text.replace("\\end{array}", "\\end{pmatrix}").replace("bmatrix", "pmatrix")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    text = text.replace("\\left", "").replace("\\right", "")
    without_unit = re.sub(r"\\text\{.*?\}$", "", text).strip()  # a trailing \text{...} is a unit
    if without_unit:
        text = without_unit
    for _ in range(2):
        stripped = _UNIT_PATTERN.sub(r"\1", text)
        if stripped.strip():
            text = stripped
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "").replace("\\%", "").replace("%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if text.startswith("."):
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0].strip()) <= 2:  # "x = 5", "k=3"
        text = sides[1]
    text = _brace_roots(text).replace(" ", "")
    text = _brace_fractions(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_fraction(text)


# ------------------------------------------------------------------------------- R6b sympy equality

_SCALE_WORDS = {"million": "*10^6", "billion": "*10^9", "trillion": "*10^12"}
_SYMPY_UNITS = (
    "degree",
    "cm",
    "centimeter",
    "meter",
    "mile",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "foot",
    "feet",
    "inch",
    "yard",
)
BRACKETS = "()[]"


def _latex_to_text(text: str) -> str:
    """LaTeX -> plain text a sympy parser reads (pylatexenc), with its symbols spelled out."""
    from pylatexenc.latex2text import LatexNodes2Text

    text = text.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    text = LatexNodes2Text().latex_to_text(text)
    for symbol, word in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        text = text.replace(symbol, word)
    return text.strip()


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _drop_thousands_commas(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"(\d),(\d{3})($|\D)", r"\1\2\3", text)
    return text


def _is_integer_text(text: str) -> bool:
    value = _as_float(_drop_thousands_commas(text))
    return value is not None and abs(value - round(value)) <= 1e-7


def sympy_normalise(answer: str) -> str:
    """PRM800K-style normal form for the sympy grader (rule R6b): plain text, lower case, no units,
    integers as integers."""
    text = answer
    wrapped = re.fullmatch(r"\\text\{(.+?)\}", text)
    if wrapped:
        text = wrapped.group(1)
    text = text.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    text = text.replace(" or ", " , ").replace(" and ", " , ")
    for word, power in _SCALE_WORDS.items():
        text = text.replace(word, power)
    for unit in _SYMPY_UNITS:
        text = re.sub(unit + r"(es)?(s)? *(\^[0-9]+)?", "", text)
    text = re.sub(r"\^ *\\circ", "", text)
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = re.sub(r",\\! *", "", text)
    value = _as_float(text)
    if value is not None and abs(value - round(value)) <= 1e-7:
        text = str(int(round(value)))
    if "\\" in text:
        try:
            text = _latex_to_text(text)
        except Exception:  # noqa: BLE001 - unparsable LaTeX stays as written
            pass
    text = re.sub(r"- *", "-", text)
    text = re.sub(r"(\d) +(\d)", r"\1+\2", text)  # a mixed number "7 3/4" -> "7+3/4"
    text = text.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _is_integer_text(text):
        text = str(int(float(_drop_thousands_commas(text))))
    return text


def _tuple_elements(text: str) -> list[str]:
    text = _drop_thousands_commas(text)
    if not text:
        return []
    if len(text) > 2 and text[0] in BRACKETS and text[-1] in BRACKETS and not any(c in BRACKETS for c in text[1:-1]):
        return [element.strip() for element in text[1:-1].split(",")]
    return [text]


def _safe_for_sympy(expression: str) -> bool:
    """No more than two unknown letters, no `^{`/`^(`, no long or stacked exponents: sympy could hang."""
    letters = {c for c in expression.replace("sqrt", "").replace("frac", "") if c.isalpha()}
    if len(letters) > 2 or "^{" in expression or "^(" in expression:
        return False
    return re.search(r"\^[0-9]+\^|\^[0-9][0-9]+", expression) is None


def _sympy_difference_is_zero(gold: str, given: str) -> bool:
    import sympy
    from sympy.parsing import sympy_parser

    expression = f"({gold})-({given})"
    if not _safe_for_sympy(expression):
        return False
    transformations = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
    try:
        return (
            sympy.simplify(sympy_parser.parse_expr(expression.replace("^", "**"), transformations=transformations)) == 0
        )
    except Exception:  # noqa: BLE001 - an unparsable difference is not an equality
        return False


def sympy_equal(given: str, gold: str) -> bool:
    """Rule R6b."""
    gold_text, given_text = sympy_normalise(gold), sympy_normalise(given)
    if gold_text == given_text:
        return True
    if not given_text:
        return False
    gold_elements, given_elements = _tuple_elements(gold_text), _tuple_elements(given_text)
    if len(gold_elements) > 1 and (gold_text[0] != given_text[0] or gold_text[-1] != given_text[-1]):
        return False  # interval or tuple with other brackets
    if len(gold_elements) != len(given_elements):
        return False
    for gold_element, given_element in zip(gold_elements, given_elements):
        plain_fraction = r"^-?[0-9]+.?/0*[1-9][0-9]*.?$"
        if re.search(plain_fraction, gold_element) and re.search(plain_fraction, given_element):
            if gold_element != given_element:  # an unreduced fraction is not the answer
                return False
        elif _is_integer_text(gold_element) != _is_integer_text(given_element):
            return False
        elif not _sympy_difference_is_zero(gold_element, given_element):
            return False
    return True


# -------------------------------------------------------------------------- R6c Math-Verify on the box


def boxed_math_verify(given: str, gold: str) -> bool:
    """Rule R6c: equal normalised strings, else Math-Verify on the two strings (each wrapped in `$...$`
    unless it has one; boxed first, no fallback, every match tried).

    Oat's `is_latex_equal` passes `extraction_mode=["first_match"]`, a list; math-verify compares the mode
    with `== "first_match"` (math_verify/parser.py, `extract_target_from_pred`), so the list behaves as the
    default "any_match": a box such as `x = 8 \\%` still matches the gold `8 \\%`. We pass what it does."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold_text = sympy_normalise(gold)
    if gold_text and gold_text == sympy_normalise(given):
        return True
    configs = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())

    def parsed(text: str) -> list:
        text = text if "$" in text else f"${text}$"
        return parse(
            text,
            extraction_config=configs,
            fallback_mode="no_fallback",
            extraction_mode="any_match",
            parsing_timeout=None,
        )

    try:
        return bool(verify(parsed(gold), parsed(given), timeout_seconds=None))
    except Exception:  # noqa: BLE001 - Math-Verify failures grade False, as in the authors' code
        return False


def boxed_equal(boxed: str, gold: str) -> bool:
    """Rule R6: (a) or (b) or (c). A gold written as `\\boxed{...}` is unwrapped first."""
    if "\\boxed" in gold:
        gold = last_boxed_content(gold) or gold
    if mathd_normalise(boxed) == mathd_normalise(gold):
        return True
    try:
        if sympy_equal(boxed, gold):
            return True
    except Exception:  # noqa: BLE001 - a normalisation failure is not a match
        pass
    return boxed_math_verify(boxed, gold)


# ---------------------------------------------------------------------------------------- R4 and R7


def math_verify_label(segment: str, gold: str) -> tuple[bool, str]:
    """Rule R4: (label, Math-Verify's extracted answer)."""
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        predicted = parse(segment, parsing_timeout=None)
        extracted = str(predicted[-1]) if predicted else ""
        return bool(verify(gold_parsed, predicted, timeout_seconds=None)), extracted
    except Exception:  # noqa: BLE001 - the authors' labeling wrapper turns any exception into False
        return False, ""


def authors_label(response: str, gold: str, think_opened: bool = True) -> AuthorsLabel:
    """The authors' label of one response (rules R1-R7). The boxed grader runs first: when it accepts,
    Math-Verify cannot change the OR, so it is skipped (the label is the same, the work is less)."""
    segment, boxed_text = graded_texts(response, think_opened)
    boxed = last_boxed_content(boxed_text)
    boxed_correct = boxed is not None and boxed_equal(boxed, gold)
    if boxed_correct:
        return AuthorsLabel(True, None, True, boxed, segment)
    if segment is None:  # rule R2: Math-Verify skipped, its label False
        return AuthorsLabel(False, False, False, boxed, segment)
    verified, _ = math_verify_label(segment, gold)
    return AuthorsLabel(verified, verified, False, boxed, segment)
