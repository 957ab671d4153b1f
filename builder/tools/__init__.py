"""One subprocess wrapper per external tool."""
