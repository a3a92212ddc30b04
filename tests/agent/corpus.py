"""Realistic model outputs and exactly what the parser must make of them.

Each sample: the text as a model wrote it, the calls it contains (name, arguments), the
prose left for the user, and how many calls could not be used. ``kind`` groups them:
``clean`` (well-formed), ``damaged`` (repairable), ``broken`` (reported back), ``multi``
(several calls), ``mixed`` (prose and calls), ``none`` (plain answers) and
``lookalike`` (text that resembles a call but is not one). ``none`` and ``lookalike``
samples must never produce a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Sample:
    id: str
    kind: str
    text: str
    calls: list[Call] = field(default_factory=list)
    prose: str = ""
    problems: int = 0


def call(name: str, **arguments: Any) -> Call:
    return (name, arguments)


READ_A = '{"name": "read_file", "arguments": {"path": "a.py"}}'
#: Qwen3-Coder's XML for the same calls.
XML_READ_A = (
    "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>\n"
    "</tool_call>"
)
XML_READ_B = XML_READ_A.replace("a.py", "b.py")
TEMPLATE_EXAMPLE = (
    "```python\nTEMPLATE = '<function={name}>\\n<parameter=path>\\n{path}\\n</parameter>'\n```"
)
READ_B = '{"name": "read_file", "arguments": {"path": "b.py"}}'
LIST_ROOT = '{"name": "list_dir", "arguments": {"path": "."}}'

# Qwen3-Coder's XML, in the variants vLLM's qwen3_coder parser is tested with and the
# damage models do; values typed by the tools' schemas.
XML_SAMPLES: list[Sample] = [
    Sample("xml-basic", "clean", XML_READ_A, [call("read_file", path="a.py")]),
    Sample(
        "xml-typed-values",
        "clean",
        "<tool_call>\n<function=read_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n"
        "<parameter=start_line>\n10\n</parameter>\n<parameter=end_line>\n20\n</parameter>\n"
        "</function>\n</tool_call>",
        [call("read_file", path="src/app.py", start_line=10, end_line=20)],
    ),
    Sample(
        "xml-boolean",
        "clean",
        "<tool_call>\n<function=grep>\n<parameter=pattern>\nTODO\n</parameter>\n"
        "<parameter=ignore_case>\ntrue\n</parameter>\n</function>\n</tool_call>",
        [call("grep", pattern="TODO", ignore_case=True)],
    ),
    Sample(
        "xml-number",
        "clean",
        "<tool_call>\n<function=run_command>\n<parameter=command>\npytest -q\n</parameter>\n"
        "<parameter=timeout>\n120.5\n</parameter>\n</function>\n</tool_call>",
        [call("run_command", command="pytest -q", timeout=120.5)],
    ),
    Sample(
        "xml-multiline-value",
        "clean",
        "<tool_call>\n<function=write_file>\n<parameter=path>\nutil.py\n</parameter>\n"
        '<parameter=content>\n"""Utilities."""\n\n\ndef add(a, b):\n    return a + b\n\n'
        "</parameter>\n</function>\n</tool_call>",
        [
            call(
                "write_file",
                path="util.py",
                content='"""Utilities."""\n\n\ndef add(a, b):\n    return a + b\n',
            )
        ],
    ),
    Sample(
        "xml-edit-keeps-indentation",
        "clean",
        "<tool_call>\n<function=edit_file>\n<parameter=path>\napp.py\n</parameter>\n"
        "<parameter=old_string>\n    return a - b\n</parameter>\n"
        "<parameter=new_string>\n    return a + b\n</parameter>\n</function>\n</tool_call>",
        [
            call(
                "edit_file",
                path="app.py",
                old_string="    return a - b",
                new_string="    return a + b",
            )
        ],
    ),
    Sample(
        "xml-values-with-markup",
        "clean",
        "<tool_call>\n<function=write_file>\n<parameter=path>\ndocs/calls.md\n</parameter>\n"
        "<parameter=content>\nCalls end with </parameter> tags, like <b>this</b>.\n</parameter>\n"
        "</function>\n</tool_call>",
        [
            call(
                "write_file",
                path="docs/calls.md",
                content="Calls end with </parameter> tags, like <b>this</b>.",
            )
        ],
    ),
    Sample(
        "xml-value-with-code-fence",
        "clean",
        "<tool_call>\n<function=write_file>\n<parameter=path>\nREADME.md\n</parameter>\n"
        "<parameter=content>\n# Demo\n\n```bash\npip install demo\n```\n</parameter>\n"
        "</function>\n</tool_call>",
        [call("write_file", path="README.md", content="# Demo\n\n```bash\npip install demo\n```")],
    ),
    Sample(
        "xml-inline-values",
        "clean",
        "<tool_call><function=list_dir><parameter=path>src</parameter></function></tool_call>",
        [call("list_dir", path="src")],
    ),
    Sample(
        "xml-no-parameters",
        "clean",
        "<tool_call>\n<function=list_dir>\n</function>\n</tool_call>",
        [call("list_dir")],
    ),
    Sample(
        "xml-no-wrapper",
        "clean",
        "<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-fence-holding-the-call",
        "clean",
        f"```xml\n{XML_READ_A}\n```",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-crlf",
        "clean",
        XML_READ_A.replace("\n", "\r\n"),
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-multi-two-calls",
        "multi",
        f"{XML_READ_A}\n{XML_READ_B}",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "xml-multi-two-functions-one-tag",
        "multi",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>\n"
        "<function=read_file>\n<parameter=path>\nb.py\n</parameter>\n</function>\n</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "xml-multi-wrapped-then-bare",
        "multi",
        f"{XML_READ_A}\n<function=list_dir>\n<parameter=path>\n.\n</parameter>\n</function>",
        [call("read_file", path="a.py"), call("list_dir", path=".")],
    ),
    Sample(
        "xml-mixed-prose-same-line",
        "mixed",
        f"Sure! Let me read it for you.{XML_READ_A}",
        [call("read_file", path="a.py")],
        "Sure! Let me read it for you.",
    ),
    Sample(
        "xml-mixed-prose-around",
        "mixed",
        f"First the config.\n\n{XML_READ_A}\nThen I'll compare.",
        [call("read_file", path="a.py")],
        "First the config.\n\nThen I'll compare.",
    ),
    Sample(
        "xml-mixed-code-then-call",
        "mixed",
        "The fix:\n```python\nx = `date`\n```\n" + XML_READ_A,
        [call("read_file", path="a.py")],
        "The fix:\n```python\nx = `date`\n```",
    ),
    Sample(
        "xml-mixed-stray-backtick-in-value",
        "mixed",
        "<tool_call>\n<function=write_file>\n<parameter=path>\nrun.sh\n</parameter>\n"
        "<parameter=content>\necho `date\n</parameter>\n</function>\n</tool_call>\n"
        f"And a `tick`:\n{XML_READ_A}",
        [call("write_file", path="run.sh", content="echo `date"), call("read_file", path="a.py")],
        "And a `tick`:",
    ),
    Sample(
        "xml-multi-bare-with-stray-backtick",
        "multi",
        "<function=write_file>\n<parameter=path>\nrun.sh\n</parameter>\n<parameter=content>\n"
        "echo `date\n</parameter>\n</function>\n<function=run_command>\n<parameter=command>\n"
        "sh run.sh`\n</parameter>\n</function>",
        [
            call("write_file", path="run.sh", content="echo `date"),
            call("run_command", command="sh run.sh`"),
        ],
    ),
    Sample(
        "xml-dmg-missing-parameter-close",
        "damaged",
        "Let me check:\n<tool_call>\n<function=grep>\n<parameter=pattern>\nTODO\n"
        "<parameter=path>\nsrc\n</parameter>\n</function>\n</tool_call>",
        [call("grep", pattern="TODO", path="src")],
        "Let me check:",
    ),
    Sample(
        "xml-dmg-last-parameter-unclosed",
        "damaged",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</function>\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-dmg-missing-function-close",
        "damaged",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        # The answer ended inside a value: "a.py" may be the start of "a.pyc", and a
        # command cut short can do what the whole one would not. Told, not run.
        "xml-broken-cut-off-in-value",
        "broken",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py",
        problems=1,
    ),
    Sample(
        "xml-broken-cut-off-in-command",
        "broken",
        "<tool_call>\n<function=run_command>\n<parameter=command>\nrm -rf ./",
        problems=1,
    ),
    Sample(
        "xml-dmg-closed-by-the-call-end",
        "damaged",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-dmg-no-closing-tags",
        "damaged",
        "<tool_call>\n<function=list_dir>\n<parameter=path>\nsrc\n</parameter>",
        [call("list_dir", path="src")],
    ),
    Sample(
        "xml-dmg-indented",
        "damaged",
        "<tool_call>\n  <function=write_file>\n    <parameter=path>\n    notes.txt\n"
        "    </parameter>\n    <parameter=content>\n    line one\n      line two\n"
        "    </parameter>\n  </function>\n</tool_call>",
        [call("write_file", path="notes.txt", content="line one\n  line two")],
    ),
    Sample(
        "xml-dmg-padded-number",
        "damaged",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n"
        "<parameter=start_line>  5  </parameter>\n</function>\n</tool_call>",
        [call("read_file", path="a.py", start_line=5)],
    ),
    Sample(
        "xml-dmg-quoted-name",
        "damaged",
        '<tool_call>\n<function="read_file">\n<parameter=path>\na.py\n</parameter>\n'
        "</function>\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-dmg-json-inside-function",
        "damaged",
        '<tool_call>\n<function=read_file>\n{"path": "a.py"}\n</function>\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "xml-broken-untypable-integer",
        "broken",
        "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n"
        "<parameter=start_line>\nten\n</parameter>\n</function>\n</tool_call>",
        problems=1,
    ),
    Sample(
        "xml-broken-untypable-boolean",
        "broken",
        "<tool_call>\n<function=grep>\n<parameter=pattern>\nx\n</parameter>\n"
        "<parameter=ignore_case>\nsometimes\n</parameter>\n</function>\n</tool_call>",
        problems=1,
    ),
    Sample(
        "xml-broken-unknown-tool",
        "broken",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "</function>\n</tool_call>",
        problems=1,
    ),
    Sample(
        "xml-broken-name-tag-cut",
        "broken",
        "<tool_call>\n<function=read_fi",
        problems=1,
    ),
    Sample(
        "xml-broken-text-instead-of-parameters",
        "broken",
        "<tool_call>\n<function=read_file>\npath: a.py\n</function>\n</tool_call>",
        problems=1,
    ),
    Sample(
        "xml-look-inline-code",
        "lookalike",
        "Qwen3-Coder opens a call with `<function=read_file>` and a `<parameter=path>` tag.",
        prose="Qwen3-Coder opens a call with `<function=read_file>` and a `<parameter=path>` tag.",
    ),
    Sample(
        "xml-look-fence-example",
        "lookalike",
        "The format:\n```xml\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n"
        "</function>\n```",
        prose="The format:\n```xml\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n"
        "</function>\n```",
    ),
    Sample(
        "xml-look-fence-with-explanation",
        "lookalike",
        f"```\n# A call looks like this:\n{XML_READ_A}\n```",
        prose=f"```\n# A call looks like this:\n{XML_READ_A}\n```",
    ),
    Sample(
        "xml-look-python-string",
        "lookalike",
        TEMPLATE_EXAMPLE,
        prose=TEMPLATE_EXAMPLE,
    ),
    Sample(
        "xml-look-prose-mention",
        "lookalike",
        "The <function=NAME> tag opens a call and <parameter=NAME> tags hold its values.",
        prose="The <function=NAME> tag opens a call and <parameter=NAME> tags hold its values.",
    ),
    Sample(
        "xml-look-other-programs-tool",
        "lookalike",
        "A model with a weather tool answers:\n<function=get_weather>\n<parameter=city>\nParis\n"
        "</parameter>\n</function>",
        prose="A model with a weather tool answers:\n<function=get_weather>\n"
        "<parameter=city>\nParis\n</parameter>\n</function>",
    ),
    Sample(
        "xml-look-html",
        "lookalike",
        '```html\n<form action="/function=save">\n<input name="parameter">\n</form>\n```',
        prose='```html\n<form action="/function=save">\n<input name="parameter">\n</form>\n```',
    ),
    Sample(
        "xml-look-javascript-arrow",
        "lookalike",
        "In JavaScript, `const f = <function=x>` is a syntax error; use `const f = () => x`.",
        prose="In JavaScript, `const f = <function=x>` is a syntax error; use `const f = () => x`.",
    ),
]

# Qwen-Agent's ✿FUNCTION✿ form (qwen_agent/llm/fncall_prompts/qwen_fncall_prompt.py).
QWEN_AGENT_SAMPLES: list[Sample] = [
    Sample(
        "qa-basic",
        "clean",
        '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "qa-prose-then-call",
        "mixed",
        'I\'ll read the file first.\n✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}',
        [call("read_file", path="a.py")],
        "I'll read the file first.",
    ),
    Sample(
        "qa-parallel",
        "multi",
        '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}\n'
        '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "b.py"}',
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "qa-invented-result-dropped",
        "damaged",
        '✿FUNCTION✿: list_dir\n✿ARGS✿: {"path": "."}\n✿RESULT✿: a.py b.py\n'
        "✿RETURN✿: There are two files.",
        [call("list_dir", path=".")],
    ),
    Sample(
        "qa-trailing-comment",
        "damaged",
        '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py",} <!-- the entry point -->',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "qa-broken-arguments",
        "broken",
        "✿FUNCTION✿: read_file\n✿ARGS✿: path=a.py",
        problems=1,
    ),
    Sample(
        "qa-look-inline",
        "lookalike",
        "Qwen-Agent marks calls with `✿FUNCTION✿` and `✿ARGS✿`.",
        prose="Qwen-Agent marks calls with `✿FUNCTION✿` and `✿ARGS✿`.",
    ),
]

SAMPLES: list[Sample] = [
    # --- clean ------------------------------------------------------------------------
    Sample(
        "tag-basic",
        "clean",
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "src/app.py"}}\n</tool_call>',
        [call("read_file", path="src/app.py")],
    ),
    Sample(
        "tag-one-line",
        "clean",
        f"<tool_call>{LIST_ROOT}</tool_call>",
        [call("list_dir", path=".")],
    ),
    Sample(
        "tag-empty-arguments",
        "clean",
        '<tool_call>\n{"name": "list_dir", "arguments": {}}\n</tool_call>',
        [call("list_dir")],
    ),
    Sample(
        "tag-no-arguments-key",
        "clean",
        '<tool_call>\n{"name": "list_dir"}\n</tool_call>',
        [call("list_dir")],
    ),
    Sample(
        "tag-regex-escaped",
        "clean",
        '<tool_call>\n{"name": "grep", "arguments": {"pattern": "def \\\\w+\\\\(", '
        '"glob": "*.py"}}\n</tool_call>',
        [call("grep", pattern=r"def \w+\(", glob="*.py")],
    ),
    Sample(
        "tag-write-multiline",
        "clean",
        '<tool_call>\n{"name": "write_file", "arguments": {"path": "util.py", "content": '
        '"\\"\\"\\"Utilities.\\"\\"\\"\\n\\n\\ndef add(a, b):\\n    return a + b\\n"}}\n'
        "</tool_call>",
        [
            call(
                "write_file",
                path="util.py",
                content='"""Utilities."""\n\n\ndef add(a, b):\n    return a + b\n',
            )
        ],
    ),
    Sample(
        "tag-edit",
        "clean",
        '<tool_call>\n{"name": "edit_file", "arguments": {"path": "app.py", "old_string": '
        '"    return a - b\\n", "new_string": "    return a + b\\n"}}\n</tool_call>',
        [
            call(
                "edit_file",
                path="app.py",
                old_string="    return a - b\n",
                new_string="    return a + b\n",
            )
        ],
    ),
    Sample(
        "tag-unicode-raw",
        "clean",
        '<tool_call>{"name": "write_file", "arguments": {"path": "menu.txt", '
        '"content": "café ✓ 日本"}}</tool_call>',
        [call("write_file", path="menu.txt", content="café ✓ 日本")],
    ),
    Sample(
        "tag-unicode-escaped",
        "clean",
        '<tool_call>{"name": "write_file", "arguments": {"path": "menu.txt", '
        '"content": "caf\\u00e9"}}</tool_call>',
        [call("write_file", path="menu.txt", content="café")],
    ),
    Sample(
        "tag-command-timeout",
        "clean",
        '<tool_call>\n{"name": "run_command", "arguments": {"command": "pytest -q '
        'tests/test_app.py", "timeout": 300}}\n</tool_call>',
        [call("run_command", command="pytest -q tests/test_app.py", timeout=300)],
    ),
    Sample(
        "tag-openai-shape",
        "clean",
        '<tool_call>{"type": "function", "function": {"name": "read_file", "arguments": '
        '{"path": "README.md"}}}</tool_call>',
        [call("read_file", path="README.md")],
    ),
    Sample(
        "tag-parameters-key",
        "clean",
        '<tool_call>\n{"name": "glob", "parameters": {"pattern": "**/*.ts"}}\n</tool_call>',
        [call("glob", pattern="**/*.ts")],
    ),
    Sample(
        "tag-uppercase",
        "clean",
        f"<TOOL_CALL>\n{READ_A}\n</TOOL_CALL>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "tag-fence-inside",
        "clean",
        f"<tool_call>\n```json\n{READ_A}\n```\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "tag-im-end-token",
        "clean",
        f"<tool_call>\n{READ_A}\n</tool_call><|im_end|>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "tag-pretty-printed",
        "clean",
        '<tool_call>\n{\n  "name": "grep",\n  "arguments": {\n    "pattern": "TODO",\n'
        '    "path": "src"\n  }\n}\n</tool_call>',
        [call("grep", pattern="TODO", path="src")],
    ),
    Sample(
        "tag-content-mentions-tags",
        "clean",
        '<tool_call>{"name": "write_file", "arguments": {"path": "docs/tools.md", "content": '
        '"Calls look like <tool_call>{...}</tool_call>.\\n"}}</tool_call>',
        [
            call(
                "write_file",
                path="docs/tools.md",
                content="Calls look like <tool_call>{...}</tool_call>.\n",
            )
        ],
    ),
    Sample(
        "tag-braces-in-strings",
        "clean",
        '<tool_call>\n{"name": "edit_file", "arguments": {"path": "main.c", "old_string": '
        '"if (x) {\\n  return;\\n}", "new_string": "if (x) {\\n  return 1;\\n}"}}\n'
        "</tool_call>",
        [
            call(
                "edit_file",
                path="main.c",
                old_string="if (x) {\n  return;\n}",
                new_string="if (x) {\n  return 1;\n}",
            )
        ],
    ),
    Sample(
        "fence-json",
        "clean",
        '```json\n{"name": "read_file", "arguments": {"path": "setup.py"}}\n```',
        [call("read_file", path="setup.py")],
    ),
    Sample(
        "fence-tool-call-lang",
        "clean",
        f"```tool_call\n{READ_A}\n```",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "fence-bare",
        "clean",
        '```\n{"name": "grep", "arguments": {"pattern": "import requests"}}\n```',
        [call("grep", pattern="import requests")],
    ),
    Sample(
        "fence-list",
        "clean",
        f"```json\n[{READ_A}, {READ_B}]\n```",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "fence-xml-wrapping-tag",
        "clean",
        f"```xml\n<tool_call>\n{READ_A}\n</tool_call>\n```",
        [call("read_file", path="a.py")],
    ),
    Sample("bare-json", "clean", READ_A, [call("read_file", path="a.py")]),
    Sample(
        "bare-json-padded",
        "clean",
        f"\n  {LIST_ROOT}\n\n",
        [call("list_dir", path=".")],
    ),
    Sample(
        "tag-list",
        "clean",
        f"<tool_call>\n[{READ_A}, {READ_B}]\n</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    # --- several calls ----------------------------------------------------------------
    Sample(
        "multi-two-tags",
        "multi",
        f"<tool_call>\n{READ_A}\n</tool_call>\n<tool_call>\n{READ_B}\n</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "multi-three-with-intro",
        "multi",
        "First I'll read both files, then look for usages.\n"
        f"<tool_call>\n{READ_A}\n</tool_call>\n<tool_call>\n{READ_B}\n</tool_call>\n"
        '<tool_call>\n{"name": "grep", "arguments": {"pattern": "parse_config"}}\n</tool_call>',
        [
            call("read_file", path="a.py"),
            call("read_file", path="b.py"),
            call("grep", pattern="parse_config"),
        ],
        "First I'll read both files, then look for usages.",
    ),
    Sample(
        "multi-prose-between",
        "multi",
        f"Read the config:\n<tool_call>{READ_A}</tool_call>\nAnd the tests:\n"
        f"<tool_call>{READ_B}</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
        "Read the config:\n\nAnd the tests:",
    ),
    Sample(
        "multi-two-fences",
        "multi",
        f"```json\n{READ_A}\n```\n\n```json\n{READ_B}\n```",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "multi-first-tag-unclosed",
        "multi",
        f"<tool_call>\n{READ_A}\n<tool_call>\n{READ_B}\n</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "multi-two-objects-one-tag",
        "multi",
        f"<tool_call>\n{READ_A}\n{READ_B}\n</tool_call>",
        [call("read_file", path="a.py"), call("read_file", path="b.py")],
    ),
    Sample(
        "multi-write-then-run",
        "multi",
        "I'll add the test and run it.\n\n<tool_call>\n"
        '{"name": "write_file", "arguments": {"path": "tests/test_add.py", "content": '
        '"from util import add\\n\\n\\ndef test_add():\\n    assert add(1, 2) == 3\\n"}}\n'
        "</tool_call>\n<tool_call>\n"
        '{"name": "run_command", "arguments": {"command": "pytest -q tests/test_add.py"}}\n'
        "</tool_call>",
        [
            call(
                "write_file",
                path="tests/test_add.py",
                content="from util import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
            ),
            call("run_command", command="pytest -q tests/test_add.py"),
        ],
        "I'll add the test and run it.",
    ),
    # --- damaged but repairable -------------------------------------------------------
    Sample(
        "dmg-trailing-comma-arguments",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py",}}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-trailing-comma-outer",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"},}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-single-quotes",
        "damaged",
        "<tool_call>\n{'name': 'read_file', 'arguments': {'path': 'a.py'}}\n</tool_call>",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-python-true",
        "damaged",
        '<tool_call>\n{"name": "grep", "arguments": {"pattern": "TODO", "ignore_case": True}}'
        "\n</tool_call>",
        [call("grep", pattern="TODO", ignore_case=True)],
    ),
    Sample(
        "dmg-python-none",
        "damaged",
        '<tool_call>{"name": "read_file", "arguments": {"path": "a.py", "end_line": None}}'
        "</tool_call>",
        [call("read_file", path="a.py", end_line=None)],
    ),
    Sample(
        "dmg-python-dict",
        "damaged",
        "<tool_call>{'name': 'grep', 'arguments': {'pattern': 'x', 'ignore_case': False}}"
        "</tool_call>",
        [call("grep", pattern="x", ignore_case=False)],
    ),
    Sample(
        "dmg-raw-newlines",
        "damaged",
        '<tool_call>\n{"name": "write_file", "arguments": {"path": "notes.txt", "content": '
        '"line one\nline two\n"}}\n</tool_call>',
        [call("write_file", path="notes.txt", content="line one\nline two\n")],
    ),
    Sample(
        "dmg-raw-tab",
        "damaged",
        '<tool_call>{"name": "write_file", "arguments": {"path": "Makefile", "content": '
        '"all:\n\tcc main.c\n"}}</tool_call>',
        [call("write_file", path="Makefile", content="all:\n\tcc main.c\n")],
    ),
    Sample(
        "dmg-missing-brace",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-truncated-at-end",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-missing-close-tag",
        "damaged",
        '<tool_call>\n{"name": "list_dir", "arguments": {}}',
        [call("list_dir")],
    ),
    Sample(
        "dmg-missing-close-tag-then-prose",
        "damaged",
        f"<tool_call>\n{READ_A}\nI'll wait for the file.",
        [call("read_file", path="a.py")],
        "I'll wait for the file.",
    ),
    Sample(
        "dmg-arguments-string",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": "{\\"path\\": \\"a.py\\"}"}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-arguments-string-single-quotes",
        "damaged",
        '<tool_call>\n{"name": "read_file", "arguments": "{\'path\': \'a.py\'}"}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-unquoted-keys",
        "damaged",
        '<tool_call>\n{name: "read_file", arguments: {path: "a.py"}}\n</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-regex-backslashes",
        "damaged",
        '<tool_call>{"name": "grep", "arguments": {"pattern": "\\d+\\.\\d+"}}</tool_call>',
        [call("grep", pattern=r"\d+\.\d+")],
    ),
    Sample(
        "dmg-windows-path",
        "damaged",
        '<tool_call>{"name": "list_dir", "arguments": {"path": "src\\models"}}</tool_call>',
        [call("list_dir", path="src\\models")],
    ),
    Sample(
        "dmg-inner-quotes",
        "damaged",
        '<tool_call>{"name": "write_file", "arguments": {"path": "hi.py", "content": '
        '"print("hello")"}}</tool_call>',
        [call("write_file", path="hi.py", content='print("hello")')],
    ),
    Sample(
        "dmg-mixed-quotes",
        "damaged",
        '<tool_call>{"name": \'read_file\', "arguments": {\'path\': "a.py"}}</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-fence-trailing-commas",
        "damaged",
        '```json\n{"name": "list_dir", "arguments": {"path": "src",},}\n```',
        [call("list_dir", path="src")],
    ),
    Sample(
        "dmg-fence-single-quotes",
        "damaged",
        "```json\n{'name': 'grep', 'arguments': {'pattern': 'import os'}}\n```",
        [call("grep", pattern="import os")],
    ),
    Sample(
        "dmg-extra-closing-brace",
        "damaged",
        '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}}</tool_call>',
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-crlf",
        "damaged",
        f"<tool_call>\r\n{READ_A}\r\n</tool_call>\r\n",
        [call("read_file", path="a.py")],
    ),
    Sample(
        "dmg-apostrophe-in-single-quotes",
        "damaged",
        "<tool_call>{'name': 'write_file', 'arguments': {'path': 'a.txt', "
        "'content': 'it's done'}}</tool_call>",
        [call("write_file", path="a.txt", content="it's done")],
    ),
    Sample(
        "dmg-bare-json-trailing-comma",
        "damaged",
        '{"name": "glob", "arguments": {"pattern": "*.md",},}',
        [call("glob", pattern="*.md")],
    ),
    # --- broken: reported to the model -----------------------------------------------
    Sample(
        "broken-unquoted-values",
        "broken",
        "<tool_call>\n{name: read_file, path: a.py}\n</tool_call>",
        problems=1,
    ),
    Sample(
        "broken-missing-comma",
        "broken",
        '<tool_call>{"name": "read_file" "arguments": {"path": "a.py"}}</tool_call>',
        problems=1,
    ),
    Sample(
        "broken-no-name",
        "broken",
        '<tool_call>{"arguments": {"path": "a.py"}}</tool_call>',
        problems=1,
    ),
    Sample(
        "broken-arguments-list",
        "broken",
        '<tool_call>{"name": "read_file", "arguments": ["a.py"]}</tool_call>',
        problems=1,
    ),
    Sample(
        "broken-arguments-plain-string",
        "broken",
        '<tool_call>{"name": "run_command", "arguments": "ls -la"}</tool_call>',
        problems=1,
    ),
    Sample(
        "broken-cut-off-in-string",
        "broken",
        '<tool_call>\n{"name": "write_file", "arguments": {"path": "a.txt", "content": '
        '"def main():\n    print(\\"hel',
        problems=1,
    ),
    Sample(
        "broken-one-of-two",
        "broken",
        f"<tool_call>{READ_A}</tool_call>\n<tool_call>{{name: read_file, path: b.py}}</tool_call>",
        [call("read_file", path="a.py")],
        problems=1,
    ),
    # --- prose and calls mixed --------------------------------------------------------
    Sample(
        "mixed-intro",
        "mixed",
        f"I'll start by looking at the project layout.\n\n<tool_call>\n{LIST_ROOT}\n</tool_call>",
        [call("list_dir", path=".")],
        "I'll start by looking at the project layout.",
    ),
    Sample(
        "mixed-outro",
        "mixed",
        f"<tool_call>\n{READ_A}\n</tool_call>\nOnce I see the file I'll suggest a fix.",
        [call("read_file", path="a.py")],
        "Once I see the file I'll suggest a fix.",
    ),
    Sample(
        "mixed-around",
        "mixed",
        f"Let me check.\n<tool_call>{READ_A}</tool_call>\nThen I'll fix it.",
        [call("read_file", path="a.py")],
        "Let me check.\n\nThen I'll fix it.",
    ),
    Sample(
        "mixed-fence-intro",
        "mixed",
        f"Let me check the tests first:\n\n```json\n{READ_A}\n```",
        [call("read_file", path="a.py")],
        "Let me check the tests first:",
    ),
    Sample(
        "mixed-code-then-call",
        "mixed",
        "Here's the plan:\n```python\nx = compute()\n```\n"
        '<tool_call>{"name": "write_file", "arguments": {"path": "x.py", "content": '
        '"x = compute()\\n"}}</tool_call>',
        [call("write_file", path="x.py", content="x = compute()\n")],
        "Here's the plan:\n```python\nx = compute()\n```",
    ),
    Sample(
        "mixed-lookalike-and-real",
        "mixed",
        'Your manifest:\n```json\n{"name": "my-app", "version": "1.0.0"}\n```\n'
        '<tool_call>{"name": "read_file", "arguments": {"path": "package.json"}}</tool_call>',
        [call("read_file", path="package.json")],
        'Your manifest:\n```json\n{"name": "my-app", "version": "1.0.0"}\n```',
    ),
    Sample(
        "mixed-think-block",
        "mixed",
        "<think>\nThe user wants the tests run.\n</think>\n\n<tool_call>\n"
        '{"name": "run_command", "arguments": {"command": "pytest -q"}}\n</tool_call>',
        [call("run_command", command="pytest -q")],
        "<think>\nThe user wants the tests run.\n</think>",
    ),
    Sample(
        "mixed-invented-response",
        "mixed",
        f"<tool_call>\n{READ_A}\n</tool_call>\n<tool_response>\nprint('hi')\n"
        "</tool_response>\nThe file prints hi.",
        [call("read_file", path="a.py")],
        "The file prints hi.",
    ),
    Sample(
        "mixed-inline-code-mention-and-call",
        "mixed",
        f"I'll use a `<tool_call>` to read it.\n<tool_call>{READ_A}</tool_call>",
        [call("read_file", path="a.py")],
        "I'll use a `<tool_call>` to read it.",
    ),
    # --- plain answers ----------------------------------------------------------------
    Sample(
        "none-sentence",
        "none",
        "The bug is in `parse_args`: it never handles `--verbose`.",
        prose="The bug is in `parse_args`: it never handles `--verbose`.",
    ),
    Sample(
        "none-python-fence",
        "none",
        "Here's the fix:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
        "This returns the sum.",
        prose="Here's the fix:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
        "This returns the sum.",
    ),
    Sample("none-empty", "none", ""),
    Sample("none-blank", "none", "   \n  \n"),
    Sample(
        "none-list",
        "none",
        "Three options:\n\n1. Use a dict.\n2. Use a dataclass.\n3. Use a NamedTuple.",
        prose="Three options:\n\n1. Use a dict.\n2. Use a dataclass.\n3. Use a NamedTuple.",
    ),
    # --- lookalikes: never calls ------------------------------------------------------
    Sample(
        "look-package-json",
        "lookalike",
        'Your package.json should look like:\n\n```json\n{\n  "name": "my-app",\n'
        '  "version": "1.0.0",\n  "scripts": {"test": "jest"}\n}\n```',
        prose='Your package.json should look like:\n\n```json\n{\n  "name": "my-app",\n'
        '  "version": "1.0.0",\n  "scripts": {"test": "jest"}\n}\n```',
    ),
    Sample(
        "look-openai-tools-in-python",
        "lookalike",
        '```python\ntools = [{"type": "function", "function": {"name": "read_file", '
        '"parameters": {"type": "object"}}}]\n```',
        prose='```python\ntools = [{"type": "function", "function": {"name": "read_file", '
        '"parameters": {"type": "object"}}}]\n```',
    ),
    Sample(
        "look-unknown-tool-json",
        "lookalike",
        'With function calling, the model answers:\n\n```json\n{"name": "get_weather", '
        '"arguments": {"city": "Paris"}}\n```',
        prose='With function calling, the model answers:\n\n```json\n{"name": "get_weather", '
        '"arguments": {"city": "Paris"}}\n```',
    ),
    Sample(
        "look-inline-tag",
        "lookalike",
        "Qwen models wrap calls in `<tool_call>` tags.",
        prose="Qwen models wrap calls in `<tool_call>` tags.",
    ),
    Sample(
        "look-tag-in-python-string",
        "lookalike",
        '```python\nprompt = \'<tool_call>{"name": "read_file", "arguments": {}}'
        "</tool_call>'\n```",
        prose='```python\nprompt = \'<tool_call>{"name": "read_file", "arguments": {}}'
        "</tool_call>'\n```",
    ),
    Sample(
        "look-tag-word-in-prose",
        "lookalike",
        "The <tool_call> tag is followed by a JSON object.",
        prose="The <tool_call> tag is followed by a JSON object.",
    ),
    Sample(
        "look-bare-name-only",
        "lookalike",
        '{"name": "read_file"}',
        prose='{"name": "read_file"}',
    ),
    Sample(
        "look-json-schema",
        "lookalike",
        '```json\n{"type": "object", "properties": {"name": {"type": "string"}, '
        '"arguments": {"type": "object"}}}\n```',
        prose='```json\n{"type": "object", "properties": {"name": {"type": "string"}, '
        '"arguments": {"type": "object"}}}\n```',
    ),
    Sample(
        "look-json-mid-sentence",
        "lookalike",
        f"Send {READ_A} to the API and it reads the file.",
        prose=f"Send {READ_A} to the API and it reads the file.",
    ),
    Sample(
        "look-javascript-object",
        "lookalike",
        "```javascript\nconst call = {name: 'read_file', arguments: {path: 'a.py'}};\n```",
        prose="```javascript\nconst call = {name: 'read_file', arguments: {path: 'a.py'}};\n```",
    ),
    Sample(
        "look-yaml",
        "lookalike",
        "```yaml\nname: read_file\narguments:\n  path: a.py\n```",
        prose="```yaml\nname: read_file\narguments:\n  path: a.py\n```",
    ),
    Sample(
        "look-inline-json",
        "lookalike",
        f"The log line was `{READ_A}`, which is a tool call.",
        prose=f"The log line was `{READ_A}`, which is a tool call.",
    ),
    Sample(
        "look-html-escaped-tag",
        "lookalike",
        f"&lt;tool_call&gt;{READ_A}&lt;/tool_call&gt;",
        prose=f"&lt;tool_call&gt;{READ_A}&lt;/tool_call&gt;",
    ),
    Sample(
        "look-word-tool-call",
        "lookalike",
        "I will make a tool_call to read the file once you confirm.",
        prose="I will make a tool_call to read the file once you confirm.",
    ),
    Sample(
        "look-json-array-data",
        "lookalike",
        '```json\n[{"name": "Alice", "age": 30}, {"name": "Bob", "age": 25}]\n```',
        prose='```json\n[{"name": "Alice", "age": 30}, {"name": "Bob", "age": 25}]\n```',
    ),
    Sample(
        "look-fence-format-example",
        "lookalike",
        f"```\n# The format looks like this:\n<tool_call>\n{READ_A}\n</tool_call>\n```",
        prose=f"```\n# The format looks like this:\n<tool_call>\n{READ_A}\n</tool_call>\n```",
    ),
    Sample(
        "look-diff",
        "lookalike",
        '```diff\n-{"name": "read_file", "arguments": {}}\n+{"name": "read_file", '
        '"arguments": {"path": "a.py"}}\n```',
        prose='```diff\n-{"name": "read_file", "arguments": {}}\n+{"name": "read_file", '
        '"arguments": {"path": "a.py"}}\n```',
    ),
    Sample(
        "look-bare-data-object",
        "lookalike",
        '{"status": "ok", "count": 3}',
        prose='{"status": "ok", "count": 3}',
    ),
    Sample(
        "look-double-backtick-inline",
        "lookalike",
        f"Write ``<tool_call>{READ_A}</tool_call>`` to call it.",
        prose=f"Write ``<tool_call>{READ_A}</tool_call>`` to call it.",
    ),
    Sample(
        "look-response-tag-mention",
        "lookalike",
        "Results come back in <tool_response> blocks after each call.",
        prose="Results come back in <tool_response> blocks after each call.",
    ),
    Sample(
        "look-tilde-fence-python",
        "lookalike",
        f"~~~python\nprint('<tool_call>')\ncall = {READ_A}\n~~~",
        prose=f"~~~python\nprint('<tool_call>')\ncall = {READ_A}\n~~~",
    ),
    Sample(
        "look-empty-tag-pair",
        "lookalike",
        "Wrap it in <tool_call></tool_call> and you are done.",
        prose="Wrap it in <tool_call></tool_call> and you are done.",
    ),
    *XML_SAMPLES,
    *QWEN_AGENT_SAMPLES,
]
