"""A configuration file's errors say what is wrong in the file's own terms: JSON or YAML, no Python class."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.configfile import load_file, localize_config
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.errors import ConfigError

#: Names of the classes behind the configuration: a user wrote JSON or YAML and never saw them.
INTERNAL = ("ScalerConfig", "PoolConfig", "QueueConfig", "dict[", "NoneType", "instance of")

CASES = [
    # (name, file name, text, what the message says)
    ("empty JSON", "pools.json", "", 'pools.json is empty: a configuration is {"pools": [...]}'),
    ("blank JSON", "pools.json", "  \n", "pools.json is empty"),
    ("empty YAML", "pools.yaml", "", "pools.yaml is empty"),
    ("YAML of comments only", "pools.yml", "# nothing yet\n", "pools.yml is empty"),
    ("bad JSON", "pools.json", "{pools: 1}", "pools.json is not valid JSON: Expecting property name"),
    ("bad YAML", "pools.yaml", "pools:\n  - name: [a\n", "pools.yaml is not valid YAML at line 3, column 1:"),
    ("a YAML list at the top", "pools.yaml", "- name: video\n", 'pools.yaml: expected {"pools": [...]}'),
    ("a JSON string at the top", "pools.json", '"pools"', "found a string at the top"),
    (
        "a queue that is no object",
        "pools.yaml",
        "pools:\n  - {name: v, max_size: 1, queues: [q]}\n",
        "pools.0.queues.0: Input should be an object (a mapping of fields)",
    ),
    ("pools that is no list", "pools.json", '{"pools": {"name": "v"}}', "pools: Input should be a valid array"),
]


@pytest.mark.parametrize(("name", "file", "text", "says"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_file_is_named_with_its_problem(tmp_path: Path, name: str, file: str, text: str, says: str) -> None:
    path = tmp_path / file
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_file(path)
    message = str(raised.value)
    assert says in message, name
    assert "Invalid JSON" not in message
    assert not [word for word in INTERNAL if word in message], message


def test_the_dev_stacks_names_are_mapped_to_the_local_stacks() -> None:
    config = ScalerConfig.model_validate(
        {
            "pools": [
                {
                    "name": "video",
                    "max_size": 2,
                    "auto_scaling_group": "queue-scaler-dev-video",
                    "queues": [{"name": "queue-scaler-dev-video-pro", "target_per_instance": 3}],
                }
            ]
        }
    )
    [pool] = localize_config(config, "queue-scaler-local").pools
    assert (pool.group_name, pool.queues[0].name) == ("queue-scaler-local-video", "queue-scaler-local-video-pro")
    assert pool.queues[0].target_per_instance == 3
