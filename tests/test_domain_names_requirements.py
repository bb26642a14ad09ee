"""Pure unit tests: code env names and requested-packages parsing (domain/names, requirements)."""

from __future__ import annotations

import pytest

from codenv.domain.errors import InvalidInput, InvalidSpec
from codenv.domain.names import name_key, validate_env_name
from codenv.domain.requirements import LineKind, parse_requested, requirement_name

# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Z",
        "0",
        "my-env",
        "ML-2024",
        "a-",
        "a" * 64,
        "A1-b2-C3",
        # `_` as the seed system allows it: its API's own example, a leading one, only one.
        "my_code_env_name",
        "my_env",
        "_x",
        "_",
        "a_-_b",
        "_" * 64,
    ],
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_env_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 65,
        "_" * 65,
        "my env",
        "envé",
        "环境",
        "my.env",
        "env/sub",
        "env\n",
        " env",
        "-",
        "-x",
        "--help",
        "-_x",
        "my_env@2",
        "my_env.v1",
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_env_name(name)
    error = caught.value
    assert error.field == "name"
    assert repr(name) in error.message
    assert "1 to 64" in error.message
    assert "digits, underscores and hyphens, not starting with a hyphen" in error.message
    # A name is no spec: the generic input error, not `invalid_spec`.
    assert error.to_dict() == {"code": "invalid_request", "message": error.message, "field": "name"}


def test_invalid_name_reports_the_field_it_was_given() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_env_name("bad name", field="new_name")
    assert caught.value.field == "new_name"


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("MyEnv", "myenv", True),
        ("MY-ENV", "my-env", True),
        ("env1", "ENV1", True),
        ("env-1", "env1", False),
        ("env-a", "env-b", False),
        ("My_Env", "my_env", True),
        ("my_env", "my-env", False),
        ("_x", "x", False),
    ],
)
def test_name_key_compares_case_insensitively(left: str, right: str, same: bool) -> None:
    assert (name_key(left) == name_key(right)) is same


# --- requested packages: accepted lines --------------------------------------------------------

NAMED = LineKind.NAMED
URL = LineKind.URL
ARCHIVE = LineKind.ARCHIVE
EDITABLE = LineKind.EDITABLE


@pytest.mark.parametrize(
    ("line", "kind", "name", "path"),
    [
        ("numpy", NAMED, "numpy", None),
        ("numpy>=1.20,<2", NAMED, "numpy", None),
        ("pandas == 2.2.*", NAMED, "pandas", None),
        ("requests[socks,security]>=2.31", NAMED, "requests", None),
        ('pywin32>=300; sys_platform == "win32"', NAMED, "pywin32", None),
        ("Django~=4.2", NAMED, "django", None),
        ("My_Pkg.Name==1.0", NAMED, "my-pkg-name", None),
        ("numpy===1.26.4", NAMED, "numpy", None),
        ("pkg @ https://example.com/pkg-1.0.tar.gz", URL, "pkg", None),
        ("pkg[extra] @ https://example.com/pkg-1.0-py3-none-any.whl", URL, "pkg", None),
        ("pkg @ git+https://github.com/org/pkg@v1.0", URL, "pkg", None),
        ("https://example.com/dist/pkg-1.0.tar.gz", URL, None, None),
        ("https://example.com/dist/pkg-1.0-py3-none-any.whl", URL, None, None),
        ("https://example.com/dist/pkg-1.0.zip", URL, None, None),
        ("/srv/pkgs/pkg-1.0.zip", ARCHIVE, None, "/srv/pkgs/pkg-1.0.zip"),
        ("/srv/pkgs/pkg-1.0.tar.gz", ARCHIVE, None, "/srv/pkgs/pkg-1.0.tar.gz"),
        ("/srv/pkgs/pkg-1.0.tgz", ARCHIVE, None, "/srv/pkgs/pkg-1.0.tgz"),
        ("/srv/pkgs/pkg-1.0-py3-none-any.whl", ARCHIVE, None, "/srv/pkgs/pkg-1.0-py3-none-any.whl"),
        ("/srv/pkgs/PKG-1.0.TAR.GZ", ARCHIVE, None, "/srv/pkgs/PKG-1.0.TAR.GZ"),
        ("file:///srv/pkgs/pkg-1.0.whl", ARCHIVE, None, "/srv/pkgs/pkg-1.0.whl"),
        ("-e /home/me/src/pkg", EDITABLE, None, "/home/me/src/pkg"),
        ("--editable=/home/me/src/pkg", EDITABLE, None, "/home/me/src/pkg"),
        ("--editable /home/me/src/pkg", EDITABLE, None, "/home/me/src/pkg"),
        ("-e file:///home/me/src/pkg", EDITABLE, None, "/home/me/src/pkg"),
    ],
)
def test_accepted_line_kinds(line: str, kind: LineKind, name: str | None, path: str | None) -> None:
    (parsed,) = parse_requested(line)
    assert (parsed.lineno, parsed.text, parsed.kind, parsed.name, parsed.path) == (
        1,
        line,
        kind,
        name,
        path,
    )


@pytest.mark.parametrize(
    ("line", "install_line"),
    [
        ("-e /home/me/src/pkg", "-e /home/me/src/pkg"),
        ("--editable=/home/me/src/pkg", "-e /home/me/src/pkg"),
        ("-e file:///home/me/src/pkg", "-e /home/me/src/pkg"),
        ("numpy>=1.20", "numpy>=1.20"),
        ("/srv/pkgs/pkg-1.0.whl", "/srv/pkgs/pkg-1.0.whl"),
        ("pkg @ https://example.com/pkg.whl", "pkg @ https://example.com/pkg.whl"),
    ],
)
def test_install_line(line: str, install_line: str) -> None:
    (parsed,) = parse_requested(line)
    assert parsed.install_line == install_line


def test_comments_blank_lines_and_continuations_keep_the_first_line_number() -> None:
    text = (
        "# data stack\n"  # 1
        "\n"  # 2
        "numpy>=1.20  # the array library\n"  # 3
        "   \n"  # 4
        "pandas>=2,\\\n"  # 5
        "    <3  # continued\n"  # 6
        "\t# indented comment\n"  # 7
        "scipy \\\n"  # 8
        "  ; python_version >= '3.8'\n"  # 9
        "pkg @ https://example.com/pkg.whl#sha256=abc\n"  # 10  (fragment is not a comment)
        "requests"  # 11, no final newline
    )
    parsed = parse_requested(text)
    assert [(line.lineno, line.name) for line in parsed] == [
        (3, "numpy"),
        (5, "pandas"),
        (8, "scipy"),
        (10, "pkg"),
        (11, "requests"),
    ]
    assert parsed[0].text == "numpy>=1.20"
    assert "#" not in parsed[1].text and "<3" in parsed[1].text
    assert parsed[3].text.endswith("#sha256=abc")


def test_comment_line_ending_in_backslash_does_not_swallow_the_next_line() -> None:
    # pip's rule: a comment line never continues onto the next one.
    parsed = parse_requested("# heavy deps \\\nnumpy\nscipy\n")
    assert [(line.lineno, line.name) for line in parsed] == [(2, "numpy"), (3, "scipy")]


def test_continuation_on_the_last_line_is_kept() -> None:
    parsed = parse_requested("numpy\npandas>=2 \\")
    assert [(line.lineno, line.text) for line in parsed] == [(1, "numpy"), (2, "pandas>=2")]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   # indented\n\t\n"])
def test_empty_requested_text_gives_no_lines(text: str) -> None:
    assert parse_requested(text) == ()


# --- requested packages: refused lines ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "option"),
    [
        ("-r other.txt", "-r"),
        ("--requirement other.txt", "--requirement"),
        ("-c constraints.txt", "-c"),
        ("--index-url https://pypi.example.com/simple", "--index-url"),
        ("--index-url=https://pypi.example.com/simple", "--index-url"),
        ("-i https://pypi.example.com/simple", "-i"),
        ("--extra-index-url https://pypi.example.com/simple", "--extra-index-url"),
        ("--find-links /srv/wheels", "--find-links"),
        ("-f /srv/wheels", "-f"),
        ("--pre", "--pre"),
        ("--no-binary :all:", "--no-binary"),
        ("-e", "-e"),
    ],
)
def test_option_lines_are_refused_with_line_number_and_option(line: str, option: str) -> None:
    text = f"# header\nnumpy\n\n{line}\nscipy\n"
    with pytest.raises(InvalidSpec) as caught:
        parse_requested(text)
    error = caught.value
    assert error.field == "requested"
    assert error.message.startswith("line 4: ") and error.line == 4
    assert repr(option) in error.message
    assert "not allowed" in error.message


@pytest.mark.parametrize("line", ["numpy===", "foo bar", "pkg>=", "pkg==", "pkg[extra", "==1.0"])
def test_malformed_lines_are_refused_with_their_line_number(line: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_requested(f"numpy\n# note\n{line}\n")
    error = caught.value
    assert error.field == "requested"
    assert error.message.startswith("line 3: invalid requirement")
    assert repr(line) in error.message
    assert error.to_dict() == {
        "code": "invalid_spec",
        "message": error.message,
        "field": "requested",
        "line": 3,
    }


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("./pkg-1.0.whl", "absolute path"),
        ("../dist/pkg-1.0.tar.gz", "absolute path"),
        ("~/pkg-1.0.zip", "absolute path"),
        ("file:pkg-1.0.whl", "absolute path"),
        ("-e src/pkg", "absolute local directory"),
        ("-e ./src/pkg", "absolute local directory"),
        ("--editable=pkg", "absolute local directory"),
        ("-e git+https://github.com/org/pkg#egg=pkg", "absolute local directory"),
        ("/home/me/src/pkg", "must be an archive"),
        ("./src/pkg", "must be an archive"),
    ],
)
def test_relative_and_non_archive_local_paths_are_refused(line: str, words: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_requested(f"\n{line}")
    assert caught.value.field == "requested"
    assert caught.value.message.startswith("line 2: ") and caught.value.line == 2
    assert words in caught.value.message


def test_the_first_bad_line_is_reported_and_the_field_can_be_renamed() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_requested("numpy\nfoo bar\n-r x.txt\n", field="add")
    assert caught.value.field == "add"
    assert caught.value.message.startswith("line 2: ")


def test_bad_continued_line_reports_its_first_line() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_requested("numpy\npandas \\\n  bar\n")
    assert caught.value.message.startswith("line 2: ") and caught.value.line == 2


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("My_Pkg>=1", "my-pkg"),
        ("requests[socks]", "requests"),
        ("pkg @ https://example.com/p.whl", "pkg"),
        ("/srv/p.whl", None),
        ("foo bar", None),
    ],
)
def test_requirement_name(line: str, name: str | None) -> None:
    assert requirement_name(line) == name
