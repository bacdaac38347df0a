"""The minister's Facebook page: its webhook (messages and comments in), the Messenger processor
(requests and the citizen's conversation), and the Send API sender (replies out, within Meta's
24-hour window). No Telegram here."""
