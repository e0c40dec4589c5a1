"""The intake domain: WhatsApp messages, parsing of the # formats, tickets (issue 3)."""
