"""Owning the store: list objects, delete, move, refresh the state file, export (SCHEMA.md §22).

:func:`inventory` lists a project's objects (datasets and produced artifacts) with
their fields and states; :mod:`.actions` acts on a selection of them.
"""

from .actions import Step, export, move, refresh, remove
from .inventory import Inventory, OsView, inventory

__all__ = ["inventory", "Inventory", "OsView", "Step", "remove", "move", "refresh", "export"]
