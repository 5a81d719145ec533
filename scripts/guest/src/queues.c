/*
 * aggvm guest program: show or set a NIC's number of queue pairs.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: queues IFNAME [N]
 *
 * Busybox has no ethtool.  This is "ethtool -l/-L IFNAME combined N":
 * with N, asks the driver for N combined channels (virtio-net sends
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, or the RSS command, on its control
 * queue); then prints the number in use and the maximum.
 */

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int channels(int fd, const char *ifname, struct ethtool_channels *ch)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = (void *)ch;
    return ioctl(fd, SIOCETHTOOL, &ifr);
}

int main(int argc, char **argv)
{
    struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
    int fd;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: queues IFNAME [N]\n");
        return 2;
    }
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || channels(fd, argv[1], &ch) < 0) {
        perror("queues: ETHTOOL_GCHANNELS");
        return 1;
    }
    if (argc == 3) {
        ch.cmd = ETHTOOL_SCHANNELS;
        ch.combined_count = atoi(argv[2]);
        if (channels(fd, argv[1], &ch) < 0) {
            perror("queues: ETHTOOL_SCHANNELS");
            return 1;
        }
        ch.cmd = ETHTOOL_GCHANNELS;
        if (channels(fd, argv[1], &ch) < 0) {
            perror("queues: ETHTOOL_GCHANNELS");
            return 1;
        }
    }
    printf("%u %u\n", ch.combined_count, ch.max_combined);
    close(fd);
    return 0;
}
