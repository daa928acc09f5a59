; A valid class with a branch: counts down from 5 and prints each value.
; expect: accepted
; Jasmin writes an old class-file version, so no StackMapTable is needed: the JVM infers the frames.
.class public Loop
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 2
    iconst_5
    istore_1
top:
    getstatic java/lang/System/out Ljava/io/PrintStream;
    iload_1
    invokevirtual java/io/PrintStream/println(I)V
    iinc 1 -1
    iload_1
    ifgt top
    return
.end method
