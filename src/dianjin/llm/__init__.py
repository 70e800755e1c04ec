"""How we talk to any OpenAI-compatible endpoint: the endpoint config, the async client with
retries and bounded responses, the SQLite response cache, the cost ledger and progress line, and
the small flow machinery (ask / ask_many / drive) that the data pipeline and the evaluation share.
"""
