"""Prompts sent to the chat model, each a versioned module paired with the response model it expects.

A module holds ``VERSION`` (recorded with what the prompt produced), the pydantic response model(s) and the
``build_*messages`` functions. A changed prompt or response model is a new module (``extract_v2``) rather
than an edit, so results stay attributable to the exact instructions that produced them and an evaluation
can compare two versions side by side.
"""
