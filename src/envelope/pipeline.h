/* File-descriptor plumbing shared by the parallel pipeline (pipeline.c) and the file helpers
 * (files.c). */
#ifndef KMS_ENVELOPE_PIPELINE_H
#define KMS_ENVELOPE_PIPELINE_H

#include "envelope/message.h"

/* Reads from fd until n bytes or end of input; returns the count or -1 (error raised). */
ssize_t kms_fd_read_full(int fd, uint8_t *p, size_t n);
/* Writes all n bytes (retrying short writes and EINTR); 0 or -1 (error raised). */
int kms_fd_write_all(int fd, const uint8_t *p, size_t n) __attribute__((warn_unused_result));

/* Reads and parses a message header from fd. On 0, m->hdr is parsed, hdr holds the header bytes
 * followed by any body bytes read with them (hdr->len - m->hdr.total_len of them). */
int kms_fd_read_header(int fd, kms_msg *m, kms_buf *hdr) __attribute__((warn_unused_result));

/* kms_envelope_decrypt_fd whose first bytes (possibly the whole header, or none) were already
 * read into head. */
int kms_fd_decrypt_with_head(const kms_envelope_options *o, kms_buf *head, int in_fd, int out_fd,
                             kms_envelope_info *info) __attribute__((warn_unused_result));

#endif
