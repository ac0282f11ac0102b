"""Shared helpers for the stage scripts: recipe parsing and one-line errors (cli), input checks and loading (data),
reports and summary tables (report), training defaults (training), and the datatrove blocks datatrove lacks for
Japanese (corpus_blocks). Stage scripts import from here; nothing here is a stage of its own."""
