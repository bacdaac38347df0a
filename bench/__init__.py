"""Benchmarks of casebot: how fast and how big, against Telegram's limits and a bare bot.

``python -m bench.generate`` builds synthetic databases; ``python -m bench.run`` measures and
prints a Markdown table. See bench/README.md.
"""
