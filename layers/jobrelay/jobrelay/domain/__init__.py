"""Pure domain rules: no AWS, no HTTP, no clock of their own."""
