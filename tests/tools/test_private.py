"""The user's private places: refused by the file tools, skipped by searches, covered
in the sandbox. The workspace here is the user's home folder, the one case where the
file tools could reach them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from qwen_dev_cli.tools import ReadPlan, ToolContext, Workspace, run_shell
from qwen_dev_cli.tools.base import Tool, ToolError
from qwen_dev_cli.tools.private import CREDENTIAL_PLACES, private_places
from qwen_dev_cli.tools.read import READ_FILE, list_dir
from qwen_dev_cli.tools.sandbox import Bubblewrap, Seatbelt
from qwen_dev_cli.tools.search import GLOB, GREP
from qwen_dev_cli.tools.workspace import PrivatePath
from qwen_dev_cli.tools.write import WRITE_FILE
from tests.security.conftest import requires_sandbox

KEY = "-----BEGIN OPENSSH PRIVATE KEY----- do-not-leak-1"
TOKEN = "machine api.example.com password do-not-leak-2"
HISTORY = "export OPENAI_API_KEY=sk-do-not-leak-3"
PAST = "a past conversation do-not-leak-4"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder with credentials, a state folder and one ordinary file."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(KEY + "\n")
    (home / ".netrc").write_text(TOKEN + "\n")
    (home / ".bash_history").write_text(HISTORY + "\n")
    (home / ".local" / "share" / "qwen-dev" / "sessions").mkdir(parents=True)
    (home / ".local" / "share" / "qwen-dev" / "sessions" / "old.jsonl").write_text(PAST)
    (home / "notes.txt").write_text("ordinary notes\n")
    return home


def search(tool: Tool, ctx: ToolContext, **arguments: object) -> str:
    """What a search finds: its plan is a read (a refusal raises instead)."""
    plan = tool.plan(arguments, ctx)
    assert isinstance(plan, ReadPlan)
    return plan.run()


@pytest.fixture
def own(home: Path) -> list[Path]:
    return [home / ".local" / "share" / "qwen-dev", home / ".config" / "qwen-dev" / "x.toml"]


@pytest.fixture
def ctx(home: Path, own: list[Path]) -> ToolContext:
    return ToolContext(Workspace(home, private_places(home, own)), home=home)


def test_the_places_are_the_credential_stores_and_the_own_files(home: Path) -> None:
    (home / ".aws-real").mkdir()
    (home / ".aws").symlink_to(home / ".aws-real")
    places = private_places(home, [home / "state"])
    assert home.resolve() / ".ssh" in places
    assert home.resolve() / ".npmrc" in places  # listed before it exists
    assert home.resolve() / ".aws-real" in places  # a link's target too
    assert home.resolve() / "state" in places
    assert len(places) >= len(CREDENTIAL_PLACES) + 2


def test_variables_that_move_a_store_move_its_place(tmp_path: Path) -> None:
    env = {
        "GNUPGHOME": "/keys/gnupg",
        "XDG_CONFIG_HOME": "/cfg",
        "KUBECONFIG": "/k/one:/k/two",
        "CARGO_HOME": "/opt/cargo",
        "HISTFILE": "relative/ignored",
    }
    places = private_places(tmp_path, env=env)
    for expected in ("/keys/gnupg", "/cfg/gh", "/k/one", "/k/two", "/opt/cargo/credentials"):
        assert Path(expected) in places
    assert not any("relative" in str(p) for p in places)


@pytest.mark.parametrize(
    "store",
    [
        ".codex/auth.json",
        ".claude/.credentials.json",
        ".gemini/oauth_creds.json",
        ".qwen/oauth_creds.json",
        ".cache/huggingface/token",
        ".kaggle/kaggle.json",
        ".config/rclone/rclone.conf",
        ".config/glab-cli",
        ".s3cfg",
        ".config/sops/age/keys.txt",
        ".config/pip/pip.conf",
        ".yarnrc.yml",
        ".config/composer/auth.json",
    ],
)
def test_other_assistants_and_tools_keys_are_private(home: Path, store: str) -> None:
    assert home.resolve() / store in private_places(home)


def test_variables_naming_more_key_files_are_followed(tmp_path: Path) -> None:
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
        "PGPASSFILE": "/keys/pgpass",
        "HF_HOME": "/models/hf",
    }
    places = private_places(tmp_path, env=env)
    for expected in ("/keys/sa.json", "/keys/pgpass", "/models/hf/token"):
        assert Path(expected) in places


def test_a_history_linked_to_dev_null_covers_nothing_of_dev(home: Path) -> None:
    (home / ".bash_history").unlink()
    (home / ".bash_history").symlink_to("/dev/null")
    places = private_places(home)
    assert Path("/dev/null") not in places
    argv = Bubblewrap("bwrap").argv("ls", cwd=home, writable=home, network=False, private=places)
    assert "/dev/null /dev/null" not in " ".join(argv)


@pytest.mark.parametrize("path", [".ssh/id_ed25519", ".ssh", ".netrc", "./.bash_history"])
def test_reading_a_private_place_is_refused(ctx: ToolContext, path: str) -> None:
    with pytest.raises(PrivatePath, match="private to the user"):
        READ_FILE.plan({"path": path}, ctx)


def test_qwen_devs_own_files_are_private(ctx: ToolContext, home: Path) -> None:
    with pytest.raises(PrivatePath):
        READ_FILE.plan({"path": ".local/share/qwen-dev/sessions/old.jsonl"}, ctx)
    with pytest.raises(PrivatePath):  # a file that does not exist yet
        WRITE_FILE.plan({"path": ".config/qwen-dev/x.toml", "content": "x"}, ctx)


def test_a_link_inside_the_workspace_to_a_private_place_is_refused(
    ctx: ToolContext, home: Path
) -> None:
    (home / "keys").symlink_to(home / ".ssh")
    with pytest.raises(PrivatePath):
        READ_FILE.plan({"path": "keys/id_ed25519"}, ctx)


def test_writing_a_private_place_is_refused(ctx: ToolContext) -> None:
    for path in (".ssh/authorized_keys", ".npmrc"):
        with pytest.raises(ToolError, match="private"):
            WRITE_FILE.plan({"path": path, "content": "ssh-ed25519 AAAA attacker"}, ctx)


def test_searches_skip_private_places_and_find_the_rest(ctx: ToolContext) -> None:
    found = search(GREP, ctx, pattern="do-not-leak|ordinary")
    assert "ordinary notes" in found
    assert "do-not-leak" not in found
    listed = search(GLOB, ctx, pattern="**/*")
    assert "notes.txt" in listed
    assert ".ssh" not in listed
    assert ".netrc" not in listed
    assert "old.jsonl" not in listed


def test_a_search_does_not_follow_a_link_into_a_private_place(ctx: ToolContext, home: Path) -> None:
    # A cloned repository can ship such a link; it needs no command to be made.
    (home / "repo").mkdir()
    (home / "repo" / "README").symlink_to("../.ssh/id_ed25519")
    assert "do-not-leak" not in search(GREP, ctx, pattern=".")
    assert "do-not-leak" not in search(GREP, ctx, pattern=".", path="repo")


def test_a_search_started_inside_a_private_place_is_refused(ctx: ToolContext) -> None:
    with pytest.raises(PrivatePath):
        GREP.plan({"pattern": "x", "path": ".ssh"}, ctx)


def test_a_workspace_inside_a_private_place_is_where_the_user_chose_to_work(
    home: Path,
) -> None:
    inside = home / ".ssh"
    workspace = Workspace(inside, private_places(home))
    assert not workspace.holds_private
    assert workspace.resolve("id_ed25519") == (inside / "id_ed25519").resolve()


def test_a_project_folder_holds_no_private_place(home: Path) -> None:
    project = home / "project"
    project.mkdir()
    workspace = Workspace(project, private_places(home))
    assert not workspace.holds_private
    assert "notes" in list_dir(home, "home")  # names outside are not the question here


# --- the sandbox's command line ---------------------------------------------------------


def test_bubblewrap_covers_what_exists_after_binding_the_workspace(home: Path) -> None:
    places = private_places(home, [home / ".local" / "share" / "qwen-dev"])
    argv = Bubblewrap("bwrap").argv("ls", cwd=home, writable=home, network=False, private=places)
    joined = " ".join(argv)
    ssh, netrc = home.resolve() / ".ssh", home.resolve() / ".netrc"
    assert f"--tmpfs {ssh} --remount-ro {ssh}" in joined
    assert f"--ro-bind /dev/null {netrc}" in joined
    assert joined.index(f"--bind {home} {home}") < joined.index(f"--tmpfs {ssh}")
    assert str(home.resolve() / ".aws") not in joined  # does not exist: nothing to cover


def test_bubblewrap_leaves_a_place_that_holds_the_workspace(home: Path) -> None:
    inside = home / ".ssh"
    argv = Bubblewrap("bwrap").argv(
        "ls", cwd=inside, writable=inside, network=False, private=private_places(home)
    )
    assert "--tmpfs" not in argv[argv.index("--bind") :]


def test_bubblewrap_covers_a_folder_once_not_its_contents_again(home: Path) -> None:
    state = home / ".local" / "share" / "qwen-dev"
    argv = Bubblewrap("bwrap").argv(
        "ls", cwd=home, writable=home, network=False, private=[state, state / "sessions"]
    )
    covers = argv[argv.index("--bind") :]
    assert covers.count("--tmpfs") == 1
    assert str(state / "sessions") not in covers


def test_bubblewrap_needs_no_cover_below_its_private_tmp() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        home = Path(folder).resolve()
        (home / ".ssh").mkdir()
        project = Path("/srv/project")
        argv = Bubblewrap("bwrap").argv(
            "ls", cwd=project, writable=project, network=False, private=private_places(home)
        )
    assert str(home) not in " ".join(argv)  # the sandbox's /tmp is empty


def test_bubblewrap_pins_the_folders_on_the_way_to_a_nested_place(home: Path) -> None:
    (home / ".config" / "gh").mkdir(parents=True)
    argv = Bubblewrap("bwrap").argv(
        "ls", cwd=home, writable=home, network=False, private=private_places(home)
    )
    joined = " ".join(argv)
    config, gh = home.resolve() / ".config", home.resolve() / ".config" / "gh"
    assert joined.index(f"--bind {config} {config}") < joined.index(f"--tmpfs {gh}")


def test_seatbelt_denies_the_private_places_after_its_allows(home: Path) -> None:
    argv = Seatbelt().argv(
        "ls", cwd=Path("/w"), writable=Path("/w"), network=False, private=[home / ".ssh"]
    )
    profile = argv[2]
    assert profile.index("(allow file-read*)") < profile.index('(param "PRIVATE0")')
    assert f"PRIVATE0={home / '.ssh'}" in argv
    assert str(home) not in profile  # paths are parameters, never profile text


# --- the real sandbox -------------------------------------------------------------------


@requires_sandbox
async def test_a_sandboxed_command_cannot_read_the_private_places(
    home: Path, own: list[Path]
) -> None:
    result = await run_shell(
        "cat .ssh/id_ed25519 .netrc .bash_history; ls -a .ssh;"
        " cat .local/share/qwen-dev/sessions/old.jsonl; cat notes.txt;"
        " echo planted > .ssh/authorized_keys",
        home,
        30,
        10_000,
        writable=home,
        private=private_places(home, own),
    )
    assert "ordinary notes" in result.output  # the rest of the home folder is there
    for secret in (KEY, TOKEN, HISTORY, PAST):
        assert secret not in result.output
    assert not (home / ".ssh" / "authorized_keys").exists()
    assert (home / ".ssh" / "id_ed25519").read_text() == KEY + "\n"  # untouched


@requires_sandbox
async def test_a_covered_place_cannot_be_renamed_out_from_under_its_cover(home: Path) -> None:
    (home / ".config" / "gh").mkdir(parents=True)
    (home / ".config" / "gh" / "hosts.yml").write_text("oauth_token: do-not-leak-5\n")
    result = await run_shell(
        "mv .config .cfg; mv .config/gh .config/gh2; cat .cfg/gh/hosts.yml"
        " .config/gh/hosts.yml .config/gh2/hosts.yml; echo kept > .config/other",
        home,
        30,
        10_000,
        writable=home,
        private=private_places(home),
    )
    assert "do-not-leak" not in result.output
    assert (home / ".config" / "gh" / "hosts.yml").exists()
    assert (home / ".config" / "other").read_text() == "kept\n"  # the folder stays writable
