"""Offloaded contexts: what an agent moves out of its window and pulls back when it needs it.

``contexts`` holds the operations (offload, read, restore, list, delete), ``compression`` the zstandard
frame and why its level, ``summaries`` the representative text each context is embedded and found by.
"""
