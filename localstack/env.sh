# Source me (bash/sh): `. localstack/env.sh` — AWS SDK/CLI settings for the
# LocalStack started by start.sh. Region and credentials keep any value
# already set; the endpoint always follows FIREBREAK_LOCALSTACK_PORT.
export AWS_ENDPOINT_URL="http://127.0.0.1:${FIREBREAK_LOCALSTACK_PORT:-4566}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
case ",${NO_PROXY:-}," in
    *,127.0.0.1,*) ;;
    *) export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost" ;;
esac
