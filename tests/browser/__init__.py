"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright for Python."""
