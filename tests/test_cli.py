"""The `pydl` command: train, eval, summary, demo (a reduced run), help text, wrong names."""
import json
import os
import subprocess
import sys

import pytest

from pydl.cli import build_parser, main

COMMANDS = ["demo", "train", "eval", "summary", "bench", "config"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: pydl {command}" in out and len(out.splitlines()) > 4


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert all(a.help for a in sub._choices_actions)


@pytest.mark.parametrize("argv, message", [
    (["train", "resnet1000", "--data", "spirals"], "unknown model 'resnet1000'; known: "),
    (["train", "mlp", "--data", "imagenet"], "unknown data set 'imagenet'; known: blobs, cifar10"),
    (["train", "mlp", "--data", "mnist"], "--data-root"),
    (["train", "mlp", "--data", "spirals", "--augment", "twirl"], "unknown augmentation 'twirl'"),
    (["train", "mlp", "--data", "spirals", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "mlp", "--data", "spirals", "--epochs", "0"], "expected a positive integer"),
    (["train", "mlp", "--data", "spirals", "--early-stopping", "3", "--val-fraction", "0"], "validation split"),
    (["summary", "nosuchnet"], "unknown model 'nosuchnet'; known: "),
    (["train", "mlp"], "--data"),
])
def test_wrong_arguments_name_the_valid_choices(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "known: " in message and "model" in message:
        assert "mlp" in err and "lenet5" in err


def test_train_eval_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "mlp", "--data", "spirals", "--epochs", "20", "--lr", "0.03", "--scheduler", "none",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "checkpoint" in printed and str(out) in printed
    assert (out / "checkpoint.safetensors").exists() and (out / "log.jsonl").exists()
    assert main(["eval", str(out / "checkpoint.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "mlp on spirals" in printed and "test accuracy" in printed
    assert main(["eval", str(out), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["model"] == "mlp" and m["data"] == "spirals" and m["test_accuracy"] > 0.8


def test_train_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "mlp", "--data", "blobs", "--out", out, "--quiet", "--epochs"]
    assert main(args + ["2"]) == 0
    assert main(args + ["3", "--resume"]) == 0
    assert "after 3 epochs" in capsys.readouterr().out


def test_runtime_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pydl eval: error: checkpoint not found") and "Traceback" not in err
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    assert main(["eval", str(tmp_path / "bad.safetensors")]) == 1
    assert "bad.safetensors" in capsys.readouterr().err


def test_summary(capsys):
    assert main(["summary", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert "mlp" in names and "lenet5" in names
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "1,256,080" in out and "[1, 50, 7, 7]" in out


def test_demo_reduced_run(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pydl demo: lenet5 on Digits-28" in printed and "test accuracy" in printed
    accuracy = float(printed.split("test accuracy ")[1].split(" %")[0])
    assert accuracy > 80.0                         # 2 epochs of the 10 (the full demo reaches > 98 %)
    files = set(os.listdir(out))
    assert {"checkpoint.safetensors", "log.jsonl"} <= files
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        assert "curves.png" in files
    else:
        assert "matplotlib is not installed" in printed


def test_config_still_works(capsys):
    assert main(["config"]) == 0
    assert "pydl" in capsys.readouterr().out


def test_console_script_help(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "pydl")
    cmd = [script] if os.path.exists(script) else [sys.executable, "-m", "pydl.cli"]
    p = subprocess.run(cmd + ["demo", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0 and "LeNet-5" in p.stdout


def test_examples_compile():
    import py_compile

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    scripts = [f for f in os.listdir(folder) if f.endswith(".py")]
    assert len(scripts) >= 3
    for name in scripts:
        py_compile.compile(os.path.join(folder, name), doraise=True)
