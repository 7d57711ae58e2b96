#!/bin/sh
# The peer: the same job as operators script it today with curl and jq —
# IMDSv2 token, identity document, user-data, the role's credentials, the S3
# layer the user-data names, and the file that layer names, installed 0600
# and fsynced.
# No retries, no validation: it is the floor, not a competitor on features.
set -eu
root=$1
imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT%/}
s3=${AWS_ENDPOINT_URL_S3%/}
tok=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/latest/api/token")
md() { curl -sf -H "X-aws-ec2-metadata-token: $tok" "$imds/latest/$1"; }
region=$(md dynamic/instance-identity/document | jq -r .region)
userdata=$(md user-data)
role=$(md meta-data/iam/security-credentials/)
creds=$(md "meta-data/iam/security-credentials/$role")
ak=$(printf '%s' "$creds" | jq -r .AccessKeyId)
sk=$(printf '%s' "$creds" | jq -r .SecretAccessKey)
st=$(printf '%s' "$creds" | jq -r .Token)
s3get() { curl -sf --aws-sigv4 "aws:amz:$region:s3" --user "$ak:$sk" -H "x-amz-security-token: $st" "$s3/$1"; }
layer=$(s3get "$(printf '%s\n' "$userdata" | sed -n 's|^ *- s3://||p;T;q')")
src=$(printf '%s\n' "$layer" | sed -n 's|^ *source: s3://||p;T;q')
dest=$(printf '%s\n' "$layer" | sed -n 's|^ *- path: ||p;T;q')
mkdir -p "$root$(dirname "$dest")"
s3get "$src" > "$root$dest.tmp"
chmod 0600 "$root$dest.tmp"
sync "$root$dest.tmp"   # durable before it replaces the old one, as bootstrap does
mv "$root$dest.tmp" "$root$dest"
