"""auth_to_local rules, checked against the behaviour of hadoop-auth's KerberosName.

The expected values were worked out from hadoop-auth's sources and tests and,
for the regex corner cases, from what java.util.regex (JDK 17) does.
"""

from __future__ import annotations

import logging
import re

import pytest

from authplugins._kerberos_name import (
    AuthToLocal,
    InvalidPrincipalError,
    KerberosName,
    NoMatchingRuleError,
    RuleFormatError,
    RuleSyntaxError,
)

REALM = "EXAMPLE.COM"

# The rule set of Hadoop's TestKerberosName (one rule per line).
HADOOP_RULES = "\n".join(
    [
        r"RULE:[1:$1@$0](.*@YAHOO\.COM)s/@.*//",
        r"RULE:[2:$1](johndoe)s/^.*$/guest/",
        r"RULE:[2:$1;$2](^.*;admin$)s/;admin$//",
        r"RULE:[2:$2](root)",
        "DEFAULT",
    ]
)
LOWER_RULES = "\n".join(
    [
        "RULE:[1:$1]/L",
        "RULE:[2:$1]/L",
        r"RULE:[2:$1;$2](^.*;admin$)s/;admin$///L",
        r"RULE:[2:$1;$2](^.*;guest$)s/;guest$//g/L",
        "DEFAULT",
    ]
)


def short(rules: str, principal: str, mechanism: str = "hadoop", realm: str | None = REALM) -> str:
    return AuthToLocal.parse(rules, mechanism=mechanism, default_realm=realm).short_name(principal)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# Hadoop's own test cases
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (f"omalley@{REALM}", "omalley"),
        (f"hdfs/10.0.0.1@{REALM}", "hdfs"),
        ("oom@YAHOO.COM", "oom"),
        ("johndoe/zoo@FOO.COM", "guest"),
        ("joe/admin@FOO.COM", "joe"),
        ("joe/root@FOO.COM", "root"),
    ],
)
def test_hadoop_rules(principal: str, expected: str) -> None:
    assert short(HADOOP_RULES, principal) == expected


@pytest.mark.parametrize("principal", ["owen/owen/owen@FOO.COM", "owen@foo/bar.com"])
def test_hadoop_bad_names(principal: str) -> None:
    with pytest.raises(InvalidPrincipalError, match="Malformed Kerberos name"):
        KerberosName.parse(principal)
    with pytest.raises(InvalidPrincipalError):
        short(HADOOP_RULES, principal)


@pytest.mark.parametrize("principal", ["foo@ACME.COM", "root/joe@FOO.COM"])
def test_hadoop_anti_patterns(principal: str) -> None:
    with pytest.raises(NoMatchingRuleError, match=re.escape(f"No auth_to_local rule applied to '{principal}'")):
        short(HADOOP_RULES, principal, "hadoop")
    assert short(HADOOP_RULES, principal, "mit") == principal


@pytest.mark.parametrize(
    ("principal", "service", "host", "realm"),
    [
        ("HTTP/abc.com@EXAMPLE.COM", "HTTP", "abc.com", "EXAMPLE.COM"),
        ("HTTP/abc.com", "HTTP", "abc.com", None),
        ("HTTP@EXAMPLE.COM", "HTTP", None, "EXAMPLE.COM"),
        # beyond Hadoop's test
        ("alice", "alice", None, None),
        ("a b/c d@E F", "a b", "c d", "E F"),  # no character but '/' and '@' is special
        ("a\\b@R", "a\\b", None, "R"),
        # Without '@', anything that is not primary[/instance] is one opaque component.
        ("a/b/c", "a/b/c", None, None),
        ("/a", "/a", None, None),
        ("a/", "a/", None, None),
        ("a//b", "a//b", None, None),
    ],
)
def test_parse_principal(principal: str, service: str, host: str | None, realm: str | None) -> None:
    name = KerberosName.parse(principal)
    assert (name.service, name.host, name.realm) == (service, host, realm)
    assert str(name) == principal


@pytest.mark.parametrize(
    "principal",
    [
        "",
        "@R",
        "a@",
        "a/@R",
        "/b@R",
        "a//b@R",
        "a/b/c@R",
        "a@b@R",
        "a@R/x",
        "a\\@b@R",  # no escapes: the backslash is an ordinary character
        "a\\/b/c@R",
    ],
)
def test_parse_principal_malformed(principal: str) -> None:
    with pytest.raises(InvalidPrincipalError, match="Malformed Kerberos name"):
        KerberosName.parse(principal)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("Joe@FOO.COM", "joe"),
        ("Joe/root@FOO.COM", "joe"),
        ("Joe/admin@FOO.COM", "joe"),
        ("Joe/guestguest@FOO.COM", "joe"),
    ],
)
def test_hadoop_to_lower_case(principal: str, expected: str) -> None:
    assert short(LOWER_RULES, principal) == expected


# --------------------------------------------------------------------------- #
# Rule semantics
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("rules", "principal", "realm", "expected"),
    [
        ("DEFAULT", f"alice@{REALM}", REALM, "alice"),
        ("DEFAULT", f"nn/host.example.com@{REALM}", REALM, "nn"),  # instance dropped
        ("DEFAULT", "alice@OTHER.ORG", REALM, NoMatchingRuleError),
        ("DEFAULT", f"alice@{REALM.lower()}", REALM, NoMatchingRuleError),  # realms are case-sensitive
        # No default realm known: like Hadoop without krb5.conf, DEFAULT matches nothing.
        ("DEFAULT", f"alice@{REALM}", None, NoMatchingRuleError),
        ("DEFAULT", f"alice@{REALM}", "", NoMatchingRuleError),
        ("DEFAULT", "nn/host", REALM, NoMatchingRuleError),  # no realm is not the default realm
        # /L is accepted after DEFAULT and ignored, as in Hadoop.
        ("DEFAULT/L", f"Alice@{REALM}", REALM, "Alice"),
        # A principal with neither instance nor realm is returned without any rule.
        ("", "Alice", REALM, "Alice"),
        ("RULE:[1:x]", "a/b/c", REALM, "a/b/c"),
        # An empty rule set applies to nothing else.
        ("", f"alice@{REALM}", REALM, NoMatchingRuleError),
        (" \n\t ", f"alice@{REALM}", REALM, NoMatchingRuleError),
    ],
)
def test_default_rule(rules: str, principal: str, realm: str | None, expected: str | type[Exception]) -> None:
    if isinstance(expected, str):
        assert short(rules, principal, realm=realm) == expected
    else:
        with pytest.raises(expected):
            short(rules, principal, realm=realm)


@pytest.mark.parametrize(
    ("rules", "principal", "expected"),
    [
        # format: $0 realm, $1 and $2 the components, the rest literal
        ("RULE:[1:$1]", "alice@R", "alice"),
        ("RULE:[1:x-$1-$0-y]", "alice@R", "x-alice-R-y"),
        ("RULE:[2:$2.$1.$0]", "nn/host@R", "host.nn.R"),
        ("RULE:[2:$1$1]", "nn/host@R", "nnnn"),
        ("RULE:[1:$01]", "alice@R", "alice"),  # the number is read as an integer
        ("RULE:[2:$1_$0]", "nn/host", "nn_"),  # no realm: $0 is empty
        ("RULE:[1:]", "alice@R", ""),  # an empty result is returned as is
        # the rule only applies to its number of components
        ("RULE:[2:$1] RULE:[1:one-$1]", "alice@R", "one-alice"),
        ("RULE:[1:$1] RULE:[2:two-$1]", "nn/host@R", "two-nn"),
        ("RULE:[001:$1]", "alice@R", "alice"),
        ("RULE:[3:$1] RULE:[0:$1] RULE:[1:ok]", "alice@R", "ok"),
        # the filter must match the whole base
        ("RULE:[1:$1-$0](.*-R) RULE:[1:no]", "alice@R", "alice-R"),
        ("RULE:[1:$1](lic) RULE:[1:no]", "alice@R", "no"),
        ("RULE:[1:$1](a.*) RULE:[1:no]", "alice@R", "alice"),
        ("RULE:[1:$1](a b) RULE:[1:no]", "a b@R", "a b"),  # white space inside a rule
        # substitution: first match only, every match with g
        ("RULE:[1:$1]s/a/X/", "banana@R", "bXnana"),
        ("RULE:[1:$1]s/a/X/g", "banana@R", "bXnXnX"),
        ("RULE:[1:$1]s/z/X/g", "banana@R", "banana"),
        ("RULE:[1:$1]s/.*/X/g", "abc@R", "XX"),
        ("RULE:[1:$1]s/x*/-/g", "abc@R", "-a-b-c-"),
        # Java resumes one character after an empty match (Python would not).
        ("RULE:[1:$1]s/[^a]*?/X/g", "ab@R", "XaXbX"),
        ("RULE:[1:$1]s/.*?/X/g", "ab@R", "XaXbX"),
        # Java replacement syntax
        (r"RULE:[2:$1@$2]s/(.*)@(.*)/$2_$1/", "nn/host@R", "host_nn"),
        (r"RULE:[1:$1]s/(a)(b)?/[$2|$1|$0]/", "ac@R", "[|a|a]c"),  # unmatched group: empty
        (r"RULE:[1:$1]s/(a)/$12/", "a@R", "a2"),  # only as many digits as there are groups
        (r"RULE:[1:$1]s/(?<first>.)(.*)/$2${first}/", "alice@R", "licea"),
        (r"RULE:[1:$1]s/a/\$1\\/", "a@R", "$1\\"),
        (r"RULE:[1:$1]s/a/\x/", "a@R", "x"),
        # lower-casing, after everything else
        ("RULE:[1:$1]/L", "ALICE@R", "alice"),
        ("RULE:[1:$1]L", "ALICE@R", "alice"),
        ("RULE:[1:$1]s/A/B//L", "AA@R", "ba"),
        ("RULE:[1:$1]s/A/B/g/L", "AA@R", "bb"),
        ("RULE:[1:$1]s/A/B/gL", "AA@R", "bb"),
        ("RULE:[1:$1]/", "Alice@R", "Alice"),  # a lone trailing '/' is allowed
        # rules need no separator
        ("DEFAULTRULE:[1:x]", "alice@S", "x"),
        ("RULE:[2:y]RULE:[1:x]", "alice@R", "x"),
        # first rule that applies wins
        ("RULE:[1:first] RULE:[1:second]", "alice@R", "first"),
    ],
)
def test_rules(rules: str, principal: str, expected: str) -> None:
    assert short(rules, principal, realm="R") == expected


def test_lower_case_is_unicode() -> None:
    assert short("RULE:[1:$1]/L", "ÉLODIE@R") == "élodie"


# --------------------------------------------------------------------------- #
# hadoop vs mit
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("rules", "principal", "mit_result"),
    [
        ("RULE:[1:$1@$0]", "alice@R", "alice@R"),
        ("RULE:[2:$1/$2]", "nn/host@R", "nn/host"),
        ("RULE:[2:$1@$0](.*@R)s/@R/@OTHER/", "nn/host@R", "nn@OTHER"),
        ("RULE:[1:$1@$0]/L", "Alice@R", "alice@r"),
    ],
)
def test_non_simple_result(rules: str, principal: str, mit_result: str) -> None:
    with pytest.raises(NoMatchingRuleError, match=r"Non-simple name '.*' after auth_to_local rule 'RULE:"):
        short(rules, principal, "hadoop")
    assert short(rules, principal, "mit") == mit_result


def test_non_simple_result_stops_evaluation_under_hadoop() -> None:
    # Hadoop raises at once; the DEFAULT rule after it is never tried.
    rules = "RULE:[1:$1@$0] DEFAULT"
    with pytest.raises(NoMatchingRuleError, match="Non-simple name 'alice@R'"):
        short(rules, "alice@R", "hadoop", realm="R")
    assert short(rules, "alice@R", "mit", realm="R") == "alice@R"


@pytest.mark.parametrize(
    ("principal", "hadoop_error", "mit_result"),
    [
        ("alice@OTHER", "No auth_to_local rule applied to 'alice@OTHER'", "alice@OTHER"),
        ("nn/host@OTHER", "No auth_to_local rule applied to 'nn/host@OTHER'", "nn/host@OTHER"),
        ("nn/host", "No auth_to_local rule applied to 'nn/host'", "nn/host"),
    ],
)
def test_no_rule_applies(principal: str, hadoop_error: str, mit_result: str) -> None:
    with pytest.raises(NoMatchingRuleError, match=re.escape(hadoop_error)):
        short("DEFAULT", principal, "hadoop", realm="R")
    assert short("DEFAULT", principal, "mit", realm="R") == mit_result


@pytest.mark.parametrize("mechanism", ["hadoop", "mit", "HADOOP", "MIT", "Mit"])
def test_mechanism_is_case_insensitive(mechanism: str) -> None:
    rules = AuthToLocal.parse("DEFAULT", mechanism=mechanism, default_realm="R")  # type: ignore[arg-type]
    assert rules.mechanism == mechanism.lower()


@pytest.mark.parametrize("mechanism", ["", "system", "kerberos"])
def test_invalid_mechanism(mechanism: str) -> None:
    with pytest.raises(ValueError, match="Invalid rule mechanism"):
        AuthToLocal.parse("DEFAULT", mechanism=mechanism)  # type: ignore[arg-type]


def test_parsed_object() -> None:
    rules = AuthToLocal.parse("  RULE:[1:$1](a b)s/a/b/g/L\n\tDEFAULT  ", default_realm="R")
    assert rules.rules == ("RULE:[1:$1](a b)s/a/b/g/L", "DEFAULT")
    assert rules.default_realm == "R"
    assert rules.mechanism == "hadoop"
    assert "RULE:[1:$1](a b)s/a/b/g/L" in repr(rules)


# --------------------------------------------------------------------------- #
# Broken rules
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("RULE", r"invalid auth_to_local rule 1: cannot parse 'RULE'; each rule is DEFAULT or RULE:"),
        ("DEFAULT x", r"invalid auth_to_local rule 2: cannot parse 'x' after rule 1 \('DEFAULT'\)"),
        ("default", r"invalid auth_to_local rule 1: cannot parse 'default'"),
        ("RULE:[1:$1]s/a/b", r"rule 2: cannot parse 's/a/b' after rule 1 \('RULE:\[1:\$1\]'\)"),
        ("RULE:[1:$1]s/a/b/gx", r"cannot parse 'x' after rule 1 \('RULE:\[1:\$1\]s/a/b/g'\)"),
        ("RULE:[1:$1](a", r"cannot parse '\(a' after rule 1"),
        ("RULE:1:$1", r"cannot parse 'RULE:1:\$1'"),
        ("DEFAULT\nRULE:[x:$1]", r"rule 2: cannot parse 'RULE:\[x:\$1\]'"),
        ("RULE:[:$1]", r"rule 'RULE:\[:\$1\]': the number of components is missing"),
        ("RULE:[99999999999:$1]", r"the number of components 99999999999 is too large"),
        ("RULE:[1:$1](a\\)", r"rule 'RULE:\[1:\$1\]\(a\\\)': filter regex: trailing backslash at index 2 of 'a\\'"),
        ("RULE:[1:$1](a[b)", r"filter regex: unclosed character class"),
        ("RULE:[1:$1]s/(a//", r"substitution pattern: unclosed group"),
        ("RULE:[1:$1]s/a)//", r"substitution pattern: unmatched '\)'"),
        ("RULE:[1:$1]s/*//", r"dangling meta character '\*'"),
        ("RULE:[1:$1]s/a**//", r"dangling meta character '\*'"),
        ("RULE:[1:$1]s/a{//", r"illegal repetition"),
        ("RULE:[1:$1]s/a{,2}//", r"illegal repetition"),
        ("RULE:[1:$1]s/\\y//", r"illegal or unsupported escape '\\y'"),
        ("RULE:[1:$1]s/[z-a]//", r"illegal character range"),
        ("RULE:[1:$1]s/(?P<n>a)//", r"unknown inline modifier"),
        ("RULE:[1:$1]s/(?#c)//", r"unknown inline modifier"),
        ("RULE:[1:$1]s/\\k<nope>//", r"'\\k' needs the name of an earlier group"),
        # Java features with no faithful Python translation are refused, not approximated.
        ("RULE:[1:$1]s/[a[b]]//", r"character class union/nesting"),
        ("RULE:[1:$1]s/[a-z&&[^b]]//", r"character class union/nesting|intersection"),
        ("RULE:[1:$1]s/[a&&b]//", r"intersection '&&' is not supported"),
        ("RULE:[1:$1]s/\\p{L}//", r"character property 'L' is not supported"),
        ("RULE:[1:$1]s/(?x)a b//", r"inline flag\(s\) 'x' are not supported"),
        ("RULE:[1:$1]s/(?iu)a//", r"inline flag\(s\) 'u' are not supported"),
        ("RULE:[1:$1]s/(?U)a//", r"inline flag\(s\) 'U' are not supported"),
    ],
)
def test_syntax_errors(rules: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match=message) as info:
        AuthToLocal.parse(rules)
    assert not isinstance(info.value, RuleFormatError)


# Hadoop accepts these rules and fails only when a principal reaches them.
BROKEN_AT_USE = [
    ("RULE:[1:$2]", "alice@R", r"index 2 in format '\$2' is outside the valid range 0 to 1"),
    ("RULE:[2:$3]", "nn/h@R", r"index 3 in format '\$3' is outside the valid range 0 to 2"),
    ("RULE:[1:$1$]", "alice@R", r"'\$' in format '\$1\$' is not followed by a component number"),
    ("RULE:[1:$x]", "alice@R", r"'\$' in format '\$x' is not followed by a component number"),
    ("RULE:[1:$1]s/a/$2/", "a@R", r"replacement: no group 2 \(the pattern has 0\)"),
    ("RULE:[1:$1]s/a/$/", "a@R", r"replacement: illegal group reference: '\$' at the end"),
    ("RULE:[1:$1]s/a/$x/", "a@R", r"replacement: illegal group reference '\$x'"),
    ("RULE:[1:$1]s/a/x\\/", "a@R", r"replacement: character to be escaped is missing"),
    ("RULE:[1:$1]s/a/${n}/", "a@R", r"replacement: no group with name \{n\}"),
]


@pytest.mark.parametrize(("rules", "principal", "message"), BROKEN_AT_USE)
def test_broken_rule_fails_when_used(
    rules: str, principal: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="authplugins._kerberos_name"):
        parsed = AuthToLocal.parse(rules + " DEFAULT", default_realm="R")
    assert "it will fail whenever a principal reaches it" in caplog.text
    with pytest.raises(RuleFormatError, match=message):
        parsed.short_name(principal)


@pytest.mark.parametrize(("rules", "principal", "message"), BROKEN_AT_USE)
def test_broken_rule_strict(rules: str, principal: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match=message) as info:
        AuthToLocal.parse(rules, strict=True)
    assert not isinstance(info.value, RuleFormatError)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("nn/host@R", "nn"),  # other component count: the broken [1:...] rule is skipped
        ("zzz@R", "zzz"),  # the replacement is only read when the pattern matches
    ],
)
def test_broken_rule_not_reached(principal: str, expected: str) -> None:
    parsed = AuthToLocal.parse("RULE:[1:$1]s/a/$9/ DEFAULT", default_realm="R")
    assert parsed.short_name(principal) == expected
    with pytest.raises(RuleFormatError, match="no group 9"):
        parsed.short_name("alice@R")


# --------------------------------------------------------------------------- #
# Java regex semantics
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("regex", "subject", "matches"),
    [
        ("a.b", "a-b", True),
        ("a.b", "a\nb", False),
        ("a.b", "a\rb", False),  # Java's '.' also stops at \r, \u0085, \u2028, \u2029
        ("a.b", "a\u2028b", False),
        ("(?s)a.b", "a\rb", True),
        ("(?d)a.b", "a\rb", True),  # UNIX_LINES: only \n ends a line
        ("ab", "AB", False),
        ("(?i)ab", "AB", True),
        ("(?i)é", "É", False),  # case folding is ASCII-only without the u flag
        ("(?i)k", "\u212a", False),
        ("a(?i)b", "aB", True),
        ("a(?i)b", "AB", False),
        ("a(?i)b|c", "C", True),  # the flag reaches past '|'
        ("(?i:a)b", "Ab", True),
        ("(?i:a)b", "AB", False),
        ("(?i)a(?-i)b", "Ab", True),
        ("(?i)a(?-i)b", "AB", False),
        ("\\d+", "123", True),
        ("\\d+", "١٢٣", False),  # \d is ASCII in Java
        ("\\w+", "élodie", False),
        ("\\s", "\u00a0", False),
        ("\\h", "\u00a0", True),
        ("\\p{Alpha}+", "abcXYZ", True),
        ("\\p{Lower}+", "abcX", False),
        ("\\P{Lower}+", "XYZ", True),
        ("[\\p{Digit}x]+", "1x2", True),
        ("\\Qa.b\\E", "a.b", True),
        ("\\Qa.b\\E", "axb", False),
        ("\\Qab\\E*", "abbb", True),  # the quantifier binds to the last quoted character
        ("[]a]+", "]a]", True),
        ("[^]a]+", "bc", True),
        ("[a-]+", "a-a", True),
        ("\\x41\\u0042\\x{43}\\0104", "ABCD", True),
        ("(?<n>a)\\k<n>", "aa", True),
        ("(a)\\1", "aa", True),
        ("\\2(a)", "a", False),  # a reference to a group that has not matched never matches
        ("a++a", "aaa", False),  # possessive
        ("(?>a+)a", "aaa", False),  # atomic
        ("{2}a", "a", True),  # Java repeats nothing here
        ("a*{2}", "aaa", True),
        ("\\bé", "é", True),
        ("a\\b.", "aé", False),  # Java 8-18: \b knows non-ASCII letters
        ("a\\B.", "aé", True),
        ("a\\b.", "a-", True),
        ("\\Aa\\z", "a", True),
    ],
)
def test_java_regex(regex: str, subject: str, matches: bool) -> None:
    # A filter cannot contain ')', so the whole-string match is done by a substitution.
    rules = f"RULE:[1:$1]s/\\A(?:{regex})\\z/hit/"
    assert short(rules, f"{subject}@R") == ("hit" if matches else subject)


@pytest.mark.parametrize(
    ("regex", "subject", "matches"),
    [
        ("a.*", "alice", True),
        ("lic", "alice", False),  # the filter must match the whole base
        ("[a-z]+", "alice", True),
        ("\\w+\\.\\w+", "a.b", True),
        ("a.b", "a\rb", False),
        ("\\p{Upper}+", "ABC", True),
        ("\\Qa.b\\E", "a.b", True),
        ("a|b", "b", True),
    ],
)
def test_filter_regex(regex: str, subject: str, matches: bool) -> None:
    rules = f"RULE:[1:$1]({regex}) RULE:[1:miss]"
    assert short(rules, f"{subject}@R") == (subject if matches else "miss")


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        # '$' also matches before a final line terminator, but never between \r and \n
        ("$", "a", "a<>"),
        ("b$", "ab\n", "a<>\n"),
        ("b$", "ab\r\n", "a<>\r\n"),
        ("\\r$", "a\r\n", "a\r\n"),
        ("b$", "ab\n\n", "ab\n\n"),
        ("b$", "ab\u0085", "a<>\u0085"),
        ("b\\Z", "ab\r", "a<>\r"),
        ("b\\z", "ab\r", "ab\r"),
        ("(?m)^b", "a\rb", "a\r<>"),
        ("(?m)b$", "b\rc", "<>\rc"),
        ("(?m)^", "a\n", "<>a\n"),  # multi-line '^' never matches at the very end
        ("^", "ab", "<>ab"),
        ("\\R", "a\r\nb", "a<>b"),
    ],
)
def test_substitution_anchors(pattern: str, subject: str, expected: str) -> None:
    rules = f"RULE:[1:$1]s/{pattern}/<>/g"
    assert short(rules, f"{subject}@R", "mit") == expected


# --------------------------------------------------------------------------- #
# A realistic configuration
# --------------------------------------------------------------------------- #

REALISTIC = """
    RULE:[2:$1@$0]([jt]t@.*EXAMPLE\\.COM)s/.*/mapred/
    RULE:[2:$1@$0]([nd]n@.*EXAMPLE\\.COM)s/.*/hdfs/
    RULE:[2:$1@$0](HTTP@EXAMPLE\\.COM)s/.*/httpfs/
    RULE:[1:$1@$0](.*@CORP\\.EXAMPLE\\.COM)s/@.*///L
    DEFAULT
"""


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("jt/host1.example.com@EXAMPLE.COM", "mapred"),
        ("tt/host2.example.com@EXAMPLE.COM", "mapred"),
        ("nn/nn1.example.com@EXAMPLE.COM", "hdfs"),
        ("dn/dn7.example.com@EXAMPLE.COM", "hdfs"),
        ("HTTP/gw.example.com@EXAMPLE.COM", "httpfs"),
        ("Alice.Smith@CORP.EXAMPLE.COM", "alice.smith"),
        ("bob@EXAMPLE.COM", "bob"),
        ("rm/host@EXAMPLE.COM", "rm"),
        ("bob@EVIL.COM", NoMatchingRuleError),
        ("nn/host@EXAMPLE.COM.EVIL.COM", NoMatchingRuleError),
    ],
)
def test_realistic(principal: str, expected: str | type[Exception]) -> None:
    parsed = AuthToLocal.parse(REALISTIC, default_realm="EXAMPLE.COM")
    if isinstance(expected, str):
        assert parsed.short_name(principal) == expected
    else:
        with pytest.raises(expected):
            parsed.short_name(principal)
