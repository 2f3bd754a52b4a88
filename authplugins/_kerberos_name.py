"""Kerberos principal -> short user name, in hadoop-auth's ``auth_to_local`` rule language.

This is a pure-Python re-implementation of the rule language that Hadoop reads
from ``hadoop.security.auth_to_local`` (evaluated the way
``hadoop.security.auth_to_local.mechanism`` says), so that a gateway in front of
HttpFS/WebHDFS maps a SPNEGO client to the same user name Hadoop itself would.

Rule language
=============

The configuration is a sequence of rules, tried in order; the first one that
yields a name wins.  Rules are normally separated by white space or new lines,
but, as in Hadoop, nothing actually requires a separator (``DEFAULTDEFAULT`` is
two rules), and white space *inside* a rule (in a regex or a replacement) is
part of that rule.

``DEFAULT``
    A principal of the default realm maps to its first component
    (``alice@EX.COM`` and ``nn/host@EX.COM`` both give ``alice``/``nn`` when
    ``EX.COM`` is the default realm).  Any other realm: the rule does not apply.
    A ``/L`` after ``DEFAULT`` is accepted and, exactly as in Hadoop, ignored.

``RULE:[n:format](filter)s/pattern/replacement/g/L``
    * ``n`` -- the rule only applies to principals with exactly ``n``
      components (``alice@R`` has 1, ``nn/host@R`` has 2).
    * ``format`` -- builds the base string: ``$0`` is the realm, ``$1`` the
      first component, ``$2`` the second; everything else is literal.
    * ``(filter)`` -- optional; a regex that must match the *whole* base
      string, otherwise the rule does not apply.  It cannot contain ``)``.
    * ``s/pattern/replacement/`` -- optional; replace the first match of
      ``pattern`` in the base (every match with a trailing ``g``).  Neither
      part can contain ``/``.  The replacement follows Java's rules: ``$n`` and
      ``${name}`` are groups, ``\\x`` is a literal ``x``.
    * ``/L`` (or just ``L``) -- lower-case the result.

Mechanisms
==========

``hadoop`` (the default)
    A result that contains ``@`` or ``/`` is an error
    (:class:`NoMatchingRuleError` "Non-simple name ..."), raised at once --
    later rules are *not* tried.  No rule applying is also
    :class:`NoMatchingRuleError`.
``mit``
    Results may contain ``@`` and ``/``; when no rule applies the principal is
    returned unchanged (as re-assembled from its parts).

The mechanism name is matched case-insensitively, like Hadoop does.

Deliberate choices where Hadoop's behaviour is an accident of Java
====================================================================

* Default realm.  Hadoop asks the JVM's krb5 configuration and, when there is
  none, uses the empty string, which no parsed realm can equal: ``DEFAULT`` then
  never applies.  Here the caller passes ``default_realm``; ``None`` (or ``""``)
  behaves exactly like Hadoop without a krb5 configuration.
* ``$0`` of a principal without a realm (``nn/host``).  Java appends the text
  ``null``; we substitute the empty string.
* An empty principal.  Hadoop takes ``""`` as a simple name and returns it as
  the short name; :meth:`KerberosName.parse` rejects it.
* Hadoop reports a broken ``format`` (``$`` without a number, or a component
  number larger than ``n``) and a broken replacement (``$5`` with one group,
  a dangling ``\\``...) only when the rule is actually used.  We find them when
  the rules are parsed; by default (``strict=False``) we log a warning and,
  like Hadoop, raise :class:`RuleFormatError` only when a principal reaches
  the rule.  ``strict=True`` raises :class:`RuleSyntaxError` at parse time.

Kept as Hadoop does it (callers should validate the result!)
=============================================================

* A name without ``@`` that is not ``primary[/instance]`` (``a/b/c``) is a
  single opaque component, and a principal with neither an instance nor a realm
  is returned as is without consulting any rule -- even under ``hadoop``.
* Principals have no escape syntax: ``\\@`` or ``\\/`` are not escapes, so
  ``a\\@b@R`` is malformed.
* A rule may produce the empty string, which is returned as the short name.

Java regex vs Python regex
==========================

Filter and substitution patterns are Java regexes.  They are translated once,
at parse time, into equivalent Python patterns: ``\\Q..\\E`` quoting, named
groups ``(?<n>..)``/``\\k<n>``, inline flags anywhere in the pattern
(``a(?i)b``), Java's line terminators for ``.``, ``^``, ``$`` and ``\\Z``
(and the ``d``/``m``/``s`` flags), ``\\z``, ``\\h``, ``\\v``, ``\\R``, ``\\e``,
``\\cX``, ``\\0oct``, ``\\x{h..}``, POSIX ``\\p{Alpha}``-style classes, ASCII-only
``\\d``/``\\w``/``\\s`` and ASCII-only case folding (Java's defaults), Unicode
``\\b`` (Java 8-18), and Java's stricter ``{`` (always a quantifier).  Java
features without a faithful Python equivalent -- class union/intersection
(``[a[b]]``, ``[a&&b]``), the ``u``, ``U``, ``x`` flags, Unicode properties such
as ``\\p{L}`` -- are rejected with a :class:`RuleSyntaxError` rather than
approximated.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = (
    "AuthToLocal",
    "InvalidPrincipalError",
    "KerberosName",
    "NoMatchingRuleError",
    "RuleFormatError",
    "RuleSyntaxError",
)

_log = logging.getLogger(__name__)


def _q(text: str) -> str:
    """Quote ``text`` for a message; regexes read better without repr's doubled backslashes."""
    return f"'{text}'" if text.isprintable() else repr(text)


class RuleSyntaxError(ValueError):
    """A rule string does not parse; the message says which rule and why."""


class RuleFormatError(RuleSyntaxError):
    """A rule parsed but cannot be applied (bad ``$n`` in its format or replacement).

    Raised by :meth:`AuthToLocal.short_name` when a principal reaches such a
    rule, which is when Hadoop reports it too.
    """


class NoMatchingRuleError(ValueError):
    """No rule applies to the principal, or (``hadoop``) a rule gave a non-simple name."""


class InvalidPrincipalError(ValueError):
    """Not of the form ``primary[/instance]@REALM`` or ``primary[/instance]``."""


# --------------------------------------------------------------------------- #
# Principals
# --------------------------------------------------------------------------- #

# primary, optional /instance, optional @realm; no part may be empty or hold '/' or '@'.
_PRINCIPAL: Final = re.compile(r"([^/@]+)(?:/([^/@]+))?(?:@([^/@]+))?")


@dataclass(frozen=True, slots=True)
class KerberosName:
    """A principal split into its parts (at most two components and a realm)."""

    service: str
    host: str | None
    realm: str | None

    @classmethod
    def parse(cls, principal: str) -> KerberosName:
        """Split ``principal``; raise :class:`InvalidPrincipalError` when it is malformed.

        As in Hadoop, a string without ``@`` that does not have the shape
        ``primary[/instance]`` is taken whole as a single component.
        """
        if not principal:
            raise InvalidPrincipalError("Malformed Kerberos name: empty principal")
        m = _PRINCIPAL.fullmatch(principal)
        if m is None:
            if "@" in principal:
                raise InvalidPrincipalError(
                    f"Malformed Kerberos name: {_q(principal)} (expected "
                    "primary[/instance]@REALM, no empty parts, at most one '/')"
                )
            return cls(principal, None, None)
        return cls(m[1], m[2], m[3])

    def __str__(self) -> str:
        text = self.service
        if self.host is not None:
            text += "/" + self.host
        if self.realm is not None:
            text += "@" + self.realm
        return text


# --------------------------------------------------------------------------- #
# Java regex -> Python regex
# --------------------------------------------------------------------------- #


class _RegexError(Exception):
    pass


_JAVA_TERMINATORS: Final = "\n\r\x85\u2028\u2029"
_POSIX: Final[dict[str, str]] = {
    # Java's POSIX classes are US-ASCII only (without UNICODE_CHARACTER_CLASS).
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}
for _name in list(_POSIX):
    _POSIX["Is" + _name] = _POSIX[_name]
_HSPACE: Final = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VSPACE: Final = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_SIMPLE_ESCAPES: Final[dict[str, str]] = {
    "t": "\t",
    "n": "\n",
    "r": "\r",
    "f": "\f",
    "a": "\x07",
    "e": "\x1b",
}
_VSPACE_DOT: Final = "\\n\\r\\x85\\u2028\\u2029"  # Java's '.' stops at these
_QUANTIFIER: Final = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_JAVA_FLAGS: Final = "idmsuxU"


def _class_char(ch: str) -> str:
    """A literal character, safe anywhere inside a Python character class."""
    if ch in "\\]^-[&~|" or not ch.isprintable():
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\U{ord(ch):08x}"
    return ch


@dataclass
class _Frame:
    flags: frozenset[str]
    wrappers: list[str]  # scoped-flag groups opened by "(?i)" inside this group
    start: int = 0  # where the group's text begins in the output
    number: int = 0  # capturing group number, 0 when not capturing


class _JavaRegex:
    """Translates one Java regex into Python syntax (compiled with re.ASCII)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.out: list[str] = []
        self.groups = 0
        self.names: dict[str, int] = {}
        self.closed: set[int] = set()
        self.stack: list[_Frame] = [_Frame(frozenset(), [])]
        # Start (in ``out``) of the atom a quantifier would apply to; None when
        # there is none (pattern start, after '(' '|' an inline flag group or a
        # quantifier).
        self.last: int | None = None

    # -- helpers -----------------------------------------------------------
    def groupnumber(self, name: str) -> int:
        return self.names[name]

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < len(self.src) else ""

    def _fail(self, why: str) -> _RegexError:
        return _RegexError(f"{why} at index {self.i} of {_q(self.src)}")

    @property
    def _flags(self) -> frozenset[str]:
        return self.stack[-1].flags

    def _emit(self, text: str) -> None:
        """Append one quantifiable atom."""
        self.last = len(self.out)
        self.out.append(text)

    def _quantifier(self) -> None:
        src = self.src
        if src[self.i] == "{":
            m = _QUANTIFIER.match(src, self.i)
            if m is None:
                raise self._fail("illegal repetition '{'")
            quant = m[0]
            self.i = m.end()
        else:
            quant = src[self.i]
            self.i += 1
        if self._peek() in ("?", "+") and self._peek():
            quant += self._peek()
            self.i += 1
        if self.last is None:
            if quant[0] != "{":
                raise self._fail(f"dangling meta character {quant[0]!r}")
            # Java quantifies an empty node here: it matches the empty string.
            return
        atom = "".join(self.out[self.last :])
        del self.out[self.last :]
        # Java lets assertions (^, \b, \A...) be repeated; Python needs a group.
        self.out.append(f"(?:{atom}){quant}")
        self.last = None

    def translate(self) -> str:
        while self.i < len(self.src):
            self._atom()
        if len(self.stack) != 1:
            raise self._fail("unclosed group")
        self.out.append(")" * len(self.stack[0].wrappers))
        return "".join(self.out)

    # -- top level ---------------------------------------------------------
    def _atom(self) -> None:
        ch = self.src[self.i]
        if ch == "\\" and self._peek(1) == "Q":
            self.i += 2
            end = self.src.find("\\E", self.i)
            text = self.src[self.i :] if end < 0 else self.src[self.i : end]
            self.i = len(self.src) if end < 0 else end + 2
            for c in text:  # each quoted character is its own atom, as in Java
                self._emit(re.escape(c))
        elif ch == "\\":
            self.i += 1
            self._emit(self._escape(in_class=False))
        elif ch == "[":
            self._emit(self._char_class())
        elif ch == "(":
            self._open_group()
        elif ch == ")":
            self._close_group()
        elif ch == "|":
            frame = self.stack[-1]
            # Java inline flags reach across '|': close and reopen their scopes.
            self.out.append(")" * len(frame.wrappers) + "|" + "".join(frame.wrappers))
            self.last = None
            self.i += 1
        elif ch == ".":
            flags = self._flags
            if "s" in flags:
                self._emit("(?s:.)")
            elif "d" in flags:
                self._emit("[^\\n]")
            else:
                self._emit(f"[^{_VSPACE_DOT}]")
            self.i += 1
        elif ch == "^":
            self._emit(self._caret())
            self.i += 1
        elif ch == "$":
            self._emit(self._dollar(multiline="m" in self._flags))
            self.i += 1
        elif ch in "{*+?":
            self._quantifier()
        else:
            self._emit(re.escape(ch))
            self.i += 1

    def _caret(self) -> str:
        flags = self._flags
        if "m" not in flags:
            return "\\A"
        if "d" in flags:
            return "(?:\\A|(?<=\\n))(?!\\Z)"
        # After any line terminator but not between \r and \n, never at the end.
        return "(?:\\A|(?<=[\\n\\x85\\u2028\\u2029])|(?<=\\r)(?!\\n))(?!\\Z)"

    def _dollar(self, *, multiline: bool) -> str:
        flags = self._flags
        if "d" in flags:
            return "(?=\\n|\\Z)" if multiline else "(?=\\n?\\Z)"
        if multiline:
            return "(?:(?=[\\r\\x85\\u2028\\u2029]|\\Z)|(?<!\\r)(?=\\n))"
        return "(?:\\Z|(?=\\r\\n\\Z)|(?<!\\r)(?=\\n\\Z)|(?=[\\r\\x85\\u2028\\u2029]\\Z))"

    # -- groups ------------------------------------------------------------
    def _open_group(self) -> None:
        src = self.src
        self.i += 1
        if self._peek() != "?":
            self.groups += 1
            self._push("(", self.groups)
            return
        self.i += 1
        nxt = self._peek()
        if nxt in (":", "=", "!", ">"):
            self.i += 1
            self._push("(?" + nxt)
        elif src.startswith("<=", self.i) or src.startswith("<!", self.i):
            self._push("(?" + src[self.i : self.i + 2])
            self.i += 2
        elif nxt == "<":
            m = re.compile(r"<([A-Za-z][A-Za-z0-9]*)>").match(src, self.i)
            if m is None:
                raise self._fail("bad named group (Java names are a letter then letters/digits)")
            if m[1] in self.names:
                raise self._fail(f"named group <{m[1]}> is defined twice")
            self.names[m[1]] = self.groups + 1
            self.groups += 1
            self.i = m.end()
            self._push(f"(?P<{m[1]}>", self.groups)
        else:
            m = re.compile(r"([A-Za-z]*)(?:-([A-Za-z]*))?([:)])").match(src, self.i)
            if m is None or any(f not in _JAVA_FLAGS for f in (m[1] or "") + (m[2] or "")):
                raise self._fail("unknown inline modifier")
            on, off = set(m[1] or ""), set(m[2] or "")
            bad = (on | off) & set("uxU")
            if bad:
                raise self._fail(f"Java inline flag(s) {''.join(sorted(bad))!r} are not supported")
            self.i = m.end()
            flags = (self._flags | on) - off
            scope = self._case_scope(self._flags, flags)
            if m[3] == ":":
                self._push(scope or "(?:")
                self.stack[-1].flags = flags
            else:
                frame = self.stack[-1]
                frame.flags = flags
                self.last = None  # Java: nothing before "(?i)" can be repeated after it
                if scope:
                    frame.wrappers.append(scope)
                    self.out.append(scope)

    @staticmethod
    def _case_scope(old: frozenset[str], new: frozenset[str]) -> str:
        if ("i" in old) == ("i" in new):
            return ""
        return "(?i:" if "i" in new else "(?-i:"

    def _push(self, opener: str, number: int = 0) -> None:
        self.stack.append(_Frame(self._flags, [], len(self.out), number))
        self.out.append(opener)
        self.last = None

    def _close_group(self) -> None:
        if len(self.stack) == 1:
            raise self._fail("unmatched ')'")
        frame = self.stack.pop()
        self.out.append(")" * len(frame.wrappers) + ")")
        self.closed.add(frame.number)
        self.last = frame.start
        self.i += 1

    # -- escapes -----------------------------------------------------------
    def _escape(self, *, in_class: bool) -> str:
        """Translate the escape whose backslash was just consumed.

        Returns Python pattern text; inside a class it is class content.
        """
        ch = self._peek()
        if not ch:
            raise self._fail("trailing backslash")
        self.i += 1
        lit = self._literal_escape(ch)
        if lit is not None:
            return _class_char(lit) if in_class else re.escape(lit)
        if ch == "Q":
            end = self.src.find("\\E", self.i)
            text = self.src[self.i :] if end < 0 else self.src[self.i : end]
            self.i = len(self.src) if end < 0 else end + 2
            if in_class:
                return "".join(_class_char(c) for c in text)
            return re.escape(text)
        if ch in "dDwWsS":
            if in_class and ch in "DWS":
                raise self._fail(f"'\\{ch}' inside a character class is not supported")
            return "\\" + ch
        if ch in "hv":
            body = _HSPACE if ch == "h" else _VSPACE
            return body if in_class else f"[{body}]"
        if ch in "HV":
            if in_class:
                raise self._fail(f"'\\{ch}' inside a character class is not supported")
            return f"[^{_HSPACE if ch == 'H' else _VSPACE}]"
        if ch in "pP":
            return self._property(negated=ch == "P", in_class=in_class)
        if in_class:
            if ch.isascii() and ch.isalnum():
                raise self._fail(f"illegal or unsupported escape '\\{ch}' in a character class")
            return _class_char(ch)
        if ch == "z":
            return "\\Z"
        if ch == "Z":
            return self._dollar(multiline=False)
        if ch == "A":
            return "\\A"
        if ch in "bB":
            if self.src.startswith("{g}", self.i):
                raise self._fail("'\\b{g}' is not supported")
            return f"(?u:\\{ch})"  # Java 8-18: letters and digits of any script
        if ch == "R":
            return "(?:\\r\\n|[\\n\\x0b\\f\\r\\x85\\u2028\\u2029])"
        if ch == "k":
            m = re.compile(r"<([A-Za-z][A-Za-z0-9]*)>").match(self.src, self.i)
            if m is None or m[1] not in self.names:
                raise self._fail("'\\k' needs the name of an earlier group in <...>")
            if self.groupnumber(m[1]) not in self.closed:
                raise self._fail(f"back reference \\k<{m[1]}> inside its own group is not supported")
            self.i = m.end()
            return f"(?P={m[1]})"
        if ch in "123456789":
            ref = int(ch)
            while self._peek().isdigit() and self._peek().isascii():
                longer = ref * 10 + int(self._peek())
                if longer > self.groups:
                    break
                ref = longer
                self.i += 1
            if ref > self.groups:
                return "(?!)"  # Java: a group that has not matched; never matches
            if ref not in self.closed:
                raise self._fail(f"back reference \\{ref} inside its own group is not supported")
            return f"(?:\\{ref})"
        if ch.isascii() and ch.isalnum():
            raise self._fail(f"illegal or unsupported escape '\\{ch}'")
        return re.escape(ch)

    def _literal_escape(self, ch: str) -> str | None:
        """Escapes that stand for one character; ``None`` when ``ch`` is not one."""
        src = self.src
        if ch in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[ch]
        if ch == "0":
            m = re.compile(r"[0-3][0-7]{2}|[0-7]{1,2}").match(src, self.i)
            if m is None:
                raise self._fail("illegal octal escape")
            self.i = m.end()
            return chr(int(m[0], 8))
        if ch == "c":
            if self.i >= len(src):
                raise self._fail("'\\c' needs a control letter")
            self.i += 1
            return chr(ord(src[self.i - 1]) ^ 64)
        if ch == "x":
            if self._peek() == "{":
                m = re.compile(r"\{([0-9A-Fa-f]+)\}").match(src, self.i)
                if m is None or int(m[1], 16) > 0x10FFFF:
                    raise self._fail("bad '\\x{...}' escape")
                self.i = m.end()
                return chr(int(m[1], 16))
            m = re.compile(r"[0-9A-Fa-f]{2}").match(src, self.i)
            if m is None:
                raise self._fail("'\\x' needs two hex digits")
            self.i = m.end()
            return chr(int(m[0], 16))
        if ch == "u":
            m = re.compile(r"[0-9A-Fa-f]{4}").match(src, self.i)
            if m is None:
                raise self._fail("'\\u' needs four hex digits")
            self.i = m.end()
            code = int(m[0], 16)
            low = re.compile(r"\\u(d[c-f][0-9a-f]{2})", re.I).match(src, self.i)
            if 0xD800 <= code <= 0xDBFF and low is not None:  # a UTF-16 surrogate pair
                self.i = low.end()
                code = 0x10000 + ((code - 0xD800) << 10) + (int(low[1], 16) - 0xDC00)
            return chr(code)
        return None

    def _property(self, *, negated: bool, in_class: bool) -> str:
        m = re.compile(r"\{(\w+)\}|([A-Za-z])").match(self.src, self.i)
        if m is None:
            raise self._fail("'\\p' needs a property name")
        name = m[1] or m[2]
        if name not in _POSIX:
            raise self._fail(
                f"character property {name!r} is not supported (only the POSIX "
                "classes: " + ", ".join(k for k in _POSIX if not k.startswith("Is")) + ")"
            )
        self.i = m.end()
        body = _POSIX[name]
        if in_class:
            if negated:
                raise self._fail("'\\P{...}' inside a character class is not supported")
            return body
        return f"[^{body}]" if negated else f"[{body}]"

    # -- character classes -------------------------------------------------
    def _char_class(self) -> str:
        start = self.i
        self.i += 1
        parts = ["["]
        if self._peek() == "^":
            parts.append("^")
            self.i += 1
        first = True
        while True:
            ch = self._peek()
            if not ch:
                self.i = start
                raise self._fail("unclosed character class")
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if ch == "[":
                raise self._fail("character class union/nesting '[..[..]..]' is not supported")
            if ch == "&" and self._peek(1) == "&":
                raise self._fail("character class intersection '&&' is not supported")
            low, text = self._class_item()
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                if low is None:
                    raise self._fail("illegal character range")
                self.i += 1
                high, _ = self._class_item()
                if high is None or ord(high) < ord(low):
                    raise self._fail("illegal character range")
                parts.append(f"{_class_char(low)}-{_class_char(high)}")
            else:
                parts.append(text)
        return "".join(parts) + "]"

    def _class_item(self) -> tuple[str | None, str]:
        """One class element: (its character if it is a single one, class text)."""
        ch = self.src[self.i]
        if ch != "\\":
            self.i += 1
            return ch, _class_char(ch)
        self.i += 1
        nxt = self._peek()
        if nxt and (nxt in _SIMPLE_ESCAPES or nxt in "0cxu"):
            self.i += 1
            lit = self._literal_escape(nxt)
            assert lit is not None
            return lit, _class_char(lit)
        if nxt and not (nxt.isascii() and nxt.isalnum()):
            self.i += 1
            return nxt, _class_char(nxt)
        return None, self._escape(in_class=True)


def _compile_java_regex(src: str) -> re.Pattern[str]:
    translated = _JavaRegex(src).translate()
    try:
        return re.compile(translated, re.ASCII)
    except re.error as exc:
        raise _RegexError(f"{exc} (in {_q(src)})") from None


def _java_replacement(rep: str, pattern: re.Pattern[str]) -> str:
    """Turn a Java ``Matcher.replaceFirst`` replacement into a Python template."""
    out: list[str] = []
    i = 0
    groups = pattern.groups
    while i < len(rep):
        ch = rep[i]
        if ch == "\\":
            if i + 1 >= len(rep):
                raise _RegexError("character to be escaped is missing (trailing '\\')")
            out.append(rep[i + 1].replace("\\", "\\\\"))
            i += 2
        elif ch == "$":
            i += 1
            if i >= len(rep):
                raise _RegexError("illegal group reference: '$' at the end")
            if rep[i] == "{":
                m = re.compile(r"\{([A-Za-z0-9]*)\}").match(rep, i)
                if m is None or not m[1]:
                    raise _RegexError("bad named group reference '${...}'")
                if m[1][0].isdigit() or m[1] not in pattern.groupindex:
                    raise _RegexError(f"no group with name {{{m[1]}}}")
                out.append(f"\\g<{m[1]}>")
                i = m.end()
            elif "0" <= rep[i] <= "9":
                ref = int(rep[i])
                i += 1
                # Java takes further digits only while they name an existing group.
                while i < len(rep) and "0" <= rep[i] <= "9" and ref * 10 + int(rep[i]) <= groups:
                    ref = ref * 10 + int(rep[i])
                    i += 1
                if ref > groups:
                    raise _RegexError(f"no group {ref} (the pattern has {groups})")
                out.append(f"\\g<{ref}>")
            else:
                raise _RegexError(f"illegal group reference '${rep[i]}'")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _java_replace_all(pattern: re.Pattern[str], template: str, text: str) -> str:
    """``Matcher.replaceAll``: differs from ``re.sub`` after an empty match.

    Java resumes the search one character after an empty match, where Python
    would first try a non-empty match at the same position.
    """
    out: list[str] = []
    copied = pos = 0
    while pos <= len(text):
        m = pattern.search(text, pos)
        if m is None:
            break
        out.append(text[copied : m.start()])
        out.append(m.expand(template))
        copied = m.end()
        pos = m.end() + 1 if m.end() == m.start() else m.end()
    out.append(text[copied:])
    return "".join(out)


# --------------------------------------------------------------------------- #
# Rules
# --------------------------------------------------------------------------- #

# Java's \s is exactly [ \t\n\x0B\f\r]; its \d is ASCII.
_RULE: Final = re.compile(
    r"[ \t\n\x0b\f\r]*"
    r"(?P<rule>(?P<default>DEFAULT)"
    r"|RULE:\[(?P<n>[0-9]*):(?P<format>[^\]]*)\]"
    r"(?:\((?P<filter>[^)]*)\))?"
    r"(?:s/(?P<pattern>[^/]*)/(?P<replacement>[^/]*)/(?P<g>g)?)?)"
    r"/?(?P<lower>L)?"
)
_INT_MAX: Final = 2**31 - 1
_NON_SIMPLE: Final = re.compile(r"[/@]")
_SYNTAX_HINT: Final = (
    "each rule is DEFAULT or RULE:[n:format](filter)s/pattern/replacement/[g][/L], "
    "where filter, s/// and /L are optional"
)


def _format_parts(fmt: str, n: int) -> tuple[str | int, ...]:
    """Split a rule format into literal text and parameter numbers (0 = realm)."""
    parts: list[str | int] = []
    for m in re.finditer(r"([^$]*)(\$([0-9]*))?", fmt):
        if m.start() == len(fmt):
            break
        if m[1]:
            parts.append(m[1])
        if m[2] is not None:
            if not m[3]:
                raise _RegexError(f"'$' in format {_q(fmt)} is not followed by a component number")
            num = int(m[3])
            if num > n:
                raise _RegexError(
                    f"index {num} in format {_q(fmt)} is outside the valid range 0 to {n}"
                )
            parts.append(num)
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class _Rule:
    text: str
    is_default: bool = False
    components: int = 0
    format: tuple[str | int, ...] = ()
    filter: re.Pattern[str] | None = None
    pattern: re.Pattern[str] | None = None
    replacement: str = ""
    repeat: bool = False
    lower: bool = False
    format_error: str | None = None  # raised when a principal reaches the rule
    replacement_error: str | None = None  # raised when ``pattern`` matches

    def base(self, params: tuple[str, ...]) -> str:
        if self.format_error is not None:
            raise RuleFormatError(f"auth_to_local rule {_q(self.text)}: {self.format_error}")
        return "".join(p if isinstance(p, str) else params[p] for p in self.format)

    def apply(self, name: KerberosName, params: tuple[str, ...], default_realm: str | None) -> str | None:
        if self.is_default:
            if default_realm is not None and name.realm == default_realm:
                return name.service
            return None
        if len(params) - 1 != self.components:
            return None
        base = self.base(params)
        if self.filter is not None and self.filter.fullmatch(base) is None:
            return None
        if self.pattern is None:
            return base
        if self.replacement_error is not None:
            if self.pattern.search(base) is None:
                return base  # like Java, the replacement is only read on a match
            raise RuleFormatError(
                f"auth_to_local rule {_q(self.text)}: replacement: {self.replacement_error}"
            )
        if not self.repeat:
            return self.pattern.sub(self.replacement, base, count=1)
        return _java_replace_all(self.pattern, self.replacement, base)


def _compile_rule(m: re.Match[str], text: str, *, strict: bool) -> _Rule:
    if m["default"]:
        return _Rule(text, is_default=True)

    def bad(why: str) -> RuleSyntaxError:
        return RuleSyntaxError(f"auth_to_local rule {_q(text)}: {why}")

    if not m["n"]:
        raise bad("the number of components is missing (RULE:[n:format])")
    n = int(m["n"])
    if n > _INT_MAX:
        raise bad(f"the number of components {m['n']} is too large")

    def regex(src: str, what: str) -> re.Pattern[str]:
        try:
            return _compile_java_regex(src)
        except _RegexError as exc:
            raise bad(f"{what}: {exc}") from None

    flt = None if m["filter"] is None else regex(m["filter"], "filter regex")
    pattern = None if m["pattern"] is None else regex(m["pattern"], "substitution pattern")

    deferred: dict[str, str | None] = {"format": None, "replacement": None}
    parts: tuple[str | int, ...] = ()
    try:
        parts = _format_parts(m["format"], n)
    except _RegexError as exc:
        deferred["format"] = str(exc)
    replacement = ""
    if pattern is not None:
        try:
            replacement = _java_replacement(m["replacement"], pattern)
        except _RegexError as exc:
            deferred["replacement"] = str(exc)
    for what, why in deferred.items():
        if why is None:
            continue
        if strict:
            raise bad(f"{what}: {why}")
        _log.warning(
            "auth_to_local rule %s: %s: %s; it will fail whenever a principal reaches it",
            _q(text),
            what,
            why,
        )
    return _Rule(
        text,
        components=n,
        format=parts,
        filter=flt,
        pattern=pattern,
        replacement=replacement,
        repeat=m["g"] is not None,
        lower=m["lower"] is not None,
        format_error=deferred["format"],
        replacement_error=deferred["replacement"],
    )


def _java_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _parse_rules(rules: str, *, strict: bool) -> tuple[_Rule, ...]:
    result: list[_Rule] = []
    remaining = _java_trim(rules)
    pos = 0
    while pos < len(remaining):
        m = _RULE.match(remaining, pos)
        if m is None or m.end() == pos:
            snippet = remaining[pos:].strip().splitlines()[0] if remaining[pos:].strip() else ""
            if len(snippet) > 60:
                snippet = snippet[:57] + "..."
            where = f" after rule {len(result)} ({_q(result[-1].text)})" if result else ""
            raise RuleSyntaxError(
                f"invalid auth_to_local rule {len(result) + 1}: cannot parse {_q(snippet)}{where}; "
                + _SYNTAX_HINT
            )
        text = remaining[m.start("rule") : m.end()]
        result.append(_compile_rule(m, text, strict=strict))
        pos = m.end()
    return tuple(result)


class AuthToLocal:
    """A compiled ``auth_to_local`` rule set; :meth:`short_name` is cheap and thread-safe."""

    __slots__ = ("_default_realm", "_mechanism", "_rules")

    def __init__(
        self, rules: tuple[_Rule, ...], mechanism: Literal["hadoop", "mit"], default_realm: str | None
    ) -> None:
        self._rules = rules
        self._mechanism: Literal["hadoop", "mit"] = mechanism
        self._default_realm = default_realm

    @classmethod
    def parse(
        cls,
        rules: str,
        *,
        mechanism: Literal["hadoop", "mit"] = "hadoop",
        default_realm: str | None = None,
        strict: bool = False,
    ) -> AuthToLocal:
        """Compile ``rules`` (the value of ``hadoop.security.auth_to_local``).

        An empty string is no rules at all (every principal with a realm or an
        instance then fails under ``hadoop`` and passes unchanged under ``mit``).
        ``strict`` turns rules that Hadoop would only reject when used (bad
        ``$n``) into a :class:`RuleSyntaxError` now.
        """
        # Hadoop compares the mechanism name case-insensitively.
        mech: Literal["hadoop", "mit"]
        if str(mechanism).lower() == "hadoop":
            mech = "hadoop"
        elif str(mechanism).lower() == "mit":
            mech = "mit"
        else:
            raise ValueError(f"Invalid rule mechanism: {mechanism!r} (expected 'hadoop' or 'mit')")
        return cls(_parse_rules(rules, strict=strict), mech, default_realm)

    @property
    def mechanism(self) -> Literal["hadoop", "mit"]:
        return self._mechanism

    @property
    def default_realm(self) -> str | None:
        return self._default_realm

    @property
    def rules(self) -> tuple[str, ...]:
        """The source text of each rule, in order."""
        return tuple(r.text for r in self._rules)

    def __repr__(self) -> str:
        return (
            f"AuthToLocal(rules={self.rules!r}, mechanism={self._mechanism!r}, "
            f"default_realm={self._default_realm!r})"
        )

    def short_name(self, principal: str) -> str:
        """Map ``principal`` to a short name, as Hadoop's ``KerberosName.getShortName``."""
        name = KerberosName.parse(principal)
        if name.host is None:
            if name.realm is None:
                return name.service  # already simple: no rule is consulted
            params: tuple[str, ...] = (name.realm, name.service)
        else:
            params = (name.realm or "", name.service, name.host)
        hadoop = self._mechanism == "hadoop"
        for rule in self._rules:
            result = rule.apply(name, params, self._default_realm)
            if result is None:
                continue
            if hadoop and _NON_SIMPLE.search(result):
                raise NoMatchingRuleError(
                    f"Non-simple name {_q(result)} after auth_to_local rule {_q(rule.text)}"
                )
            return result.lower() if rule.lower else result
        if hadoop:
            raise NoMatchingRuleError(f"No auth_to_local rule applied to {_q(str(name))}")
        return str(name)
