"""The aiohttp application: nginx's subrequests, the pages, the metrics listener, the stop."""
