#!/bin/sh
# mmdebstrap customize hook of scripts/build-image.sh: $1 the image's root, $2 this directory.
set -eu
root=$1 here=$2
echo astara-appliance > "$root/etc/hostname"
echo 'LABEL=astara-root / ext4 defaults,noatime 0 1' > "$root/etc/fstab"
install -m 0644 "$here"/astara-firstboot.service "$here"/astara-appliance-api.service "$root/etc/systemd/system/"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/ssh.service.d"
for unit in astara-firstboot.service astara-appliance-api.service; do
    ln -sf "/etc/systemd/system/$unit" "$root/etc/systemd/system/multi-user.target.wants/$unit"
done
# every server gets its own ssh host keys (made at its first start, not shared by all images)
rm -f "$root"/etc/ssh/ssh_host_*
install -m 0644 "$here"/ssh-hostkeys.conf "$root/etc/systemd/system/ssh.service.d/astara.conf"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n' \
    > "$root/etc/ssh/sshd_config.d/astara.conf"
# what an appliance does not need at run time: the appliance runs its own bird (per router);
# no screen, so no getty but the serial console's
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
        dpkg-db-backup.timer; do
    rm -f "$root/etc/systemd/system/timers.target.wants/$unit"
done
rm -f "$root/etc/systemd/system/multi-user.target.wants/bird.service" \
    "$root/etc/systemd/system/getty.target.wants/getty@tty1.service"
for unit in getty-static.service e2scrub_reap.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
ln -sf /opt/astara/bin/astara-configure-management "$root/usr/local/bin/astara-configure-management"
mkdir -p "$root/var/lib/astara"
: > "$root/etc/machine-id"  # made at first boot
