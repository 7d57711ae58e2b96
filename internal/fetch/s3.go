package fetch

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// openS3 gets the credentials (separately, so that "no credentials yet"
// is told apart from S3's answers), then sends GetObject.
func (f *Fetcher) openS3(ctx context.Context, src source) (io.ReadCloser, int64, error) {
	c, err := f.s3Client(ctx)
	if err != nil {
		return nil, 0, err
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &src.bucket, Key: &src.key})
	if err != nil {
		return nil, 0, f.classifyS3(err)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return out.Body, size, nil
}
