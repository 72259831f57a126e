"""Docker-less LocalStack Lambda runtime executor for firebreak tests."""
