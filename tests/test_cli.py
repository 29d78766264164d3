"""The keras-cnn command: list, info, summary and their errors."""

import json

from keras_cnn.cli import main


def test_list_and_pattern(capsys):
    assert main(["list", "lenet*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["lenet", "lenet5"]
    assert "60,000" in out[1]
    assert main(["list", "nothing_matches*"]) == 1


def test_info_json(capsys):
    assert main(["info", "resnet50", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reference_params"] == 25_557_032 and info["family"] == "resnet"


def test_summary_reports_reference(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "trainable params: 60,000" in out and "matches" in out


def test_unknown_name_exits_2_with_suggestion(capsys):
    assert main(["info", "resnet5"]) == 2
    assert "Did you mean" in capsys.readouterr().err
