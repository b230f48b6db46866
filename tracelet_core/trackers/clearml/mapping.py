"""How Tracelet's metric keys and tags map onto ClearML's titles, series and tags."""

from __future__ import annotations

__all__ = ["PARAMS_SECTION", "PROPERTY_ONLY_PREFIXES", "RUN_ID_TAG", "STATUS_PROPERTY", "split_metric_key", "tag_label"]

PARAMS_SECTION = "hyperparameters"
STATUS_PROPERTY = "tracelet.status"
RUN_ID_TAG = "tracelet.run_id:"  # + the Tracelet run id: the system tag that finds the task again

# Tracelet's machine-captured facts: kept as user properties only (a commit hash per run would
# make a new project-wide ClearML tag per run).
PROPERTY_ONLY_PREFIXES = ("git.", "env.", "tracelet.")


def split_metric_key(key: str) -> tuple[str, str]:
    """ClearML's (title, series) for a Tracelet metric key: split at the last ``/``.

    Example:
        >>> split_metric_key("train/loss"), split_metric_key("a/b/c"), split_metric_key("val_acc")
        (('train', 'loss'), ('a/b', 'c'), ('val_acc', 'val_acc'))
        >>> split_metric_key("loss/")
        ('loss/', 'loss/')
    """
    title, _, series = key.rpartition("/")
    return (title, series) if title and series else (key, key)


def tag_label(key: str, value: str) -> str | None:
    """The ClearML tag for one Tracelet tag, or None for tags kept as user properties only.

    Example:
        >>> tag_label("team", "vision"), tag_label("baseline", ""), tag_label("git.commit", "ab12")
        ('team:vision', 'baseline', None)
    """
    if key.startswith(PROPERTY_ONLY_PREFIXES):
        return None
    return f"{key}:{value}" if value else key
