"""Make `ansible_collections.omr.deploy` importable for the unit tests without installing it."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "omr", "deploy")):
    os.makedirs(os.path.join(COLLECTIONS, "ansible_collections", "omr"), exist_ok=True)
    os.symlink("../../..", os.path.join(COLLECTIONS, "ansible_collections", "omr", "deploy"))
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
